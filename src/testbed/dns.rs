//! The data centre's internal DNS: authoritative for `gov.internal.`.

use std::net::Ipv4Addr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record};
use tokio::net::UdpSocket;

use super::topology::{ADMIN_APP, MOBILE_ID, PORTAL};

/// The names served, with their addresses.
pub const NAMES: [(&str, &str); 3] = [
    ("portal.gov.internal.", PORTAL),
    ("admin.gov.internal.", ADMIN_APP),
    ("mobile-id.gov.internal.", MOBILE_ID),
];

fn answer(query: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let q = request.queries.first()?.clone();
    let name = q.name().to_ascii().to_lowercase();
    let mut resp = Message::response(request.metadata.id, request.metadata.op_code);
    resp.metadata.recursion_desired = request.metadata.recursion_desired;
    resp.metadata.authoritative = true;
    resp.add_query(q.clone());
    match NAMES.iter().find(|(n, _)| *n == name) {
        Some((_, addr)) => {
            let ip: Ipv4Addr = addr.parse().ok()?;
            resp.add_answer(Record::from_rdata(q.name().clone(), 60, RData::A(A(ip))));
        }
        None => resp.metadata.response_code = ResponseCode::NXDomain,
    }
    resp.to_vec().ok()
}

/// Answers queries on `sock` until the task is dropped.
pub async fn serve(sock: UdpSocket) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
            return;
        };
        if let Some(reply) = answer(&buf[..n]) {
            let _ = sock.send_to(&reply, peer).await;
        }
    }
}
