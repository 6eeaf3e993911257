//! Name resolution, connecting from a chosen source, and error classes.

use std::io;
use std::net::{IpAddr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpStream;

use super::outcome::Failure;
use crate::core::FailureKind;
use crate::plan::Source;

/// Resolver used for the names in probe URLs and hosts (no cache, so the
/// resolve phase is measured every time, as blackbox_exporter does).
pub type SystemResolver = hickory_resolver::TokioResolver;

/// Builds the system resolver from /etc/resolv.conf and /etc/hosts.
pub fn system_resolver() -> io::Result<SystemResolver> {
    let mut builder = hickory_resolver::TokioResolver::builder_tokio().map_err(io::Error::other)?;
    let opts = builder.options_mut();
    opts.cache_size = 0;
    opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Always;
    builder.build().map_err(io::Error::other)
}

/// Resolves `host` (an address is returned as is), IPv4 first.
pub async fn resolve(resolver: &SystemResolver, host: &str) -> Result<Vec<IpAddr>, Failure> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let lookup = resolver
        .lookup_ip(host)
        .await
        .map_err(|e| Failure::new(FailureKind::Dns, format!("resolving {host}: {e}")))?;
    let mut ips: Vec<IpAddr> = lookup.iter().collect();
    ips.sort_by_key(|ip| ip.is_ipv6());
    ips.dedup();
    if ips.is_empty() {
        return Err(Failure::new(
            FailureKind::Dns,
            format!("{host} has no addresses"),
        ));
    }
    Ok(ips)
}

/// [`resolve`], recording the first resolution of a probe run into `lookup`
/// (later ones, e.g. of redirect hops, leave it as it is).
pub async fn resolve_recorded(
    resolver: &SystemResolver,
    host: &str,
    lookup: &mut Option<super::Lookup>,
) -> Result<Vec<IpAddr>, Failure> {
    let t = tokio::time::Instant::now();
    let result = resolve(resolver, host).await;
    if lookup.is_none() {
        *lookup = Some(super::Lookup {
            seconds: t.elapsed().as_secs_f64(),
            ip: result.as_ref().ok().map(|ips| ips[0]),
        });
    }
    result
}

/// Maps an I/O error to a failure class.
pub fn classify_io(e: &io::Error) -> FailureKind {
    use io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => FailureKind::Refused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            FailureKind::Reset
        }
        K::TimedOut => FailureKind::Timeout,
        K::PermissionDenied => FailureKind::Permission,
        K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => {
            FailureKind::Unreachable
        }
        _ => FailureKind::Connect,
    }
}

/// A socket of `ty` towards `addr`, bound as `source` says.
fn socket_from(addr: SocketAddr, source: &Source, ty: Type) -> Result<Socket, Failure> {
    let fail =
        |what: &str, e: io::Error| Failure::new(classify_io(&e), format!("{what} {addr}: {e}"));
    let proto = if ty == Type::STREAM {
        Protocol::TCP
    } else {
        Protocol::UDP
    };
    let socket = Socket::new(Domain::for_address(addr), ty, Some(proto))
        .map_err(|e| fail("socket for", e))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| fail("socket for", e))?;
    if let Some(mark) = source.mark {
        socket
            .set_mark(mark)
            .map_err(|e| fail(&format!("setting fwmark {mark} for"), e))?;
    }
    if let Some(ifname) = &source.interface {
        socket
            .bind_device(Some(ifname.as_bytes()))
            .map_err(|e| fail(&format!("binding to interface {ifname} for"), e))?;
    }
    if let Some(ip) = source.address {
        socket
            .bind(&SocketAddr::new(ip, 0).into())
            .map_err(|e| fail(&format!("binding to {ip} for"), e))?;
    }
    Ok(socket)
}

/// Opens a TCP connection to `addr` from `source`.
pub async fn connect(addr: SocketAddr, source: &Source) -> Result<TcpStream, Failure> {
    let socket = socket_from(addr, source, Type::STREAM)?;
    socket
        .set_tcp_nodelay(true)
        .map_err(|e| Failure::new(classify_io(&e), format!("socket for {addr}: {e}")))?;
    let socket = tokio::net::TcpSocket::from_std_stream(socket.into());
    socket
        .connect(addr)
        .await
        .map_err(|e| Failure::new(classify_io(&e), format!("connecting to {addr}: {e}")))
}

/// A UDP socket from `source`, connected to `addr` (replies from anyone
/// else are dropped by the kernel).
pub async fn udp(addr: SocketAddr, source: &Source) -> Result<tokio::net::UdpSocket, Failure> {
    let fail = |e: io::Error| Failure::new(classify_io(&e), format!("UDP socket for {addr}: {e}"));
    let socket = socket_from(addr, source, Type::DGRAM)?;
    if source.address.is_none() {
        let any: IpAddr = if addr.is_ipv4() {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        };
        socket.bind(&SocketAddr::new(any, 0).into()).map_err(fail)?;
    }
    let socket = tokio::net::UdpSocket::from_std(socket.into()).map_err(fail)?;
    socket.connect(addr).await.map_err(fail)?;
    Ok(socket)
}

/// Sets the integer socket option `level`/`name` of `fd` to `value`.
pub fn set_int_option(
    fd: std::os::fd::RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the caller's fd is an open socket, and the option value is a
    // c_int living for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
