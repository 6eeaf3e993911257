//! A small authoritative DNS server on loopback (UDP and TCP on one port)
//! with one name per behaviour the DNS probe must handle.

use std::net::Ipv4Addr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, NS, SOA};
use hickory_proto::rr::{Name, RData, Record};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use super::Server;

/// The answer for `ok.test.`.
pub const OK_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
/// The answer for `wrong.test.`.
pub const WRONG_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 9, 9);
/// The SOA serial `zone.test.` answers with.
pub const ZONE_SERIAL: u32 = 2026120401;

fn answer(query: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let q = request.queries.first()?.clone();
    let name = q.name().to_ascii().to_lowercase();
    let mut resp = Message::response(request.metadata.id, request.metadata.op_code);
    resp.metadata.recursion_desired = request.metadata.recursion_desired;
    resp.metadata.authoritative = true;
    resp.add_query(q.clone());
    let a = |ip: Ipv4Addr| Record::from_rdata(q.name().clone(), 60, RData::A(A(ip)));
    match name.as_str() {
        "ok.test." => {
            resp.add_answer(a(OK_ADDR));
        }
        "wrong.test." => {
            resp.add_answer(a(WRONG_ADDR));
        }
        // Every section filled: SOA answer, NS authority, glue additional.
        "zone.test." => {
            let zone = q.name().clone();
            let ns = Name::from_ascii("ns.zone.test.").ok()?;
            let soa = SOA::new(
                ns.clone(),
                Name::from_ascii("hostmaster.zone.test.").ok()?,
                ZONE_SERIAL,
                3600,
                600,
                86400,
                60,
            );
            resp.add_answer(Record::from_rdata(zone.clone(), 60, RData::SOA(soa)));
            resp.add_authority(Record::from_rdata(zone, 60, RData::NS(NS(ns.clone()))));
            resp.add_additional(Record::from_rdata(ns, 60, RData::A(A(OK_ADDR))));
        }
        "servfail.test." => resp.metadata.response_code = ResponseCode::ServFail,
        "nx.test." => resp.metadata.response_code = ResponseCode::NXDomain,
        "empty.test." => {}
        // silent.test. and everything else: no answer at all.
        _ => return None,
    }
    resp.to_vec().ok()
}

/// Binds UDP and TCP on one free port of 127.0.0.1: the kernel picks the
/// UDP port, and when its TCP twin is taken another pair is tried.
async fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let addr = udp.local_addr().expect("addr");
        match TcpListener::bind(addr).await {
            Ok(tcp) => return (udp, tcp),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => panic!("bind tcp on {addr}: {e}"),
        }
    }
    panic!("no port of 127.0.0.1 was free for both UDP and TCP in 50 tries")
}

/// Starts the server on 127.0.0.1 (same port for UDP and TCP).
pub async fn serve() -> Server {
    let (udp, tcp) = bind_pair().await;
    let addr = udp.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let udp_loop = async {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                    return;
                };
                if let Some(reply) = answer(&buf[..n]) {
                    let _ = udp.send_to(&reply, peer).await;
                }
            }
        };
        let tcp_loop = async {
            loop {
                let Ok((mut conn, _)) = tcp.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut len = [0u8; 2];
                    if tokio::time::timeout(Duration::from_secs(5), conn.read_exact(&mut len))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if conn.read_exact(&mut buf).await.is_err() {
                        return;
                    }
                    match answer(&buf) {
                        Some(reply) => {
                            let _ = conn.write_all(&(reply.len() as u16).to_be_bytes()).await;
                            let _ = conn.write_all(&reply).await;
                        }
                        None => tokio::time::sleep(Duration::from_secs(10)).await,
                    }
                });
            }
        };
        tokio::join!(udp_loop, tcp_loop);
    });
    Server::new(addr, task)
}
