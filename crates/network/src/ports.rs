//! The host sockets berthd holds for published ports, so nothing else can take them while a
//! container publishes them. The traffic itself is DNATed by the kernel (see [`crate::nft`])
//! and never reaches these sockets.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};

use crate::NetworkError;
use crate::nft::Proto;

/// A bound host port; the socket is closed (the port freed) on drop.
#[derive(Debug)]
pub struct HeldPort {
    /// The protocol.
    pub proto: Proto,
    /// The host address it is bound to (0.0.0.0 for every address).
    pub ip: Ipv4Addr,
    /// The port, the kernel's choice when 0 was asked for.
    pub port: u16,
    /// Held only to be closed on drop.
    _socket: Socket,
}

impl HeldPort {
    /// The socket's local address.
    pub fn local_addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.ip, self.port)
    }

    /// The held TCP socket as a non-blocking listener of its own (a duplicate descriptor),
    /// for the userland copy when the kernel does not forward.
    pub fn try_clone_listener(&self) -> std::io::Result<std::net::TcpListener> {
        let s = self._socket.try_clone()?;
        s.set_nonblocking(true)?;
        Ok(s.into())
    }
}

/// Binds `ip:port` for `proto` (TCP also listens), `port` 0 meaning a port of the kernel's
/// choice; a port taken already is [`NetworkError::PortInUse`].
pub fn hold(proto: Proto, ip: Ipv4Addr, port: u16) -> Result<HeldPort, NetworkError> {
    let context = || format!("holding {proto} port {ip}:{port}");
    let io = |source| NetworkError::Io {
        context: context(),
        source,
    };
    let socket = match proto {
        Proto::Tcp => Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)),
        Proto::Udp => Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)),
    }
    .map_err(io)?;
    if proto == Proto::Tcp {
        // A connection of a removed container in TIME_WAIT must not block a re-publish;
        // a listening socket still refuses any other bind of the port. (For UDP it would let
        // another socket share the port, so not there.)
        socket.set_reuse_address(true).map_err(io)?;
    }
    let addr = SocketAddr::V4(SocketAddrV4::new(ip, port));
    if let Err(e) = socket.bind(&addr.into()) {
        return Err(if e.kind() == ErrorKind::AddrInUse {
            NetworkError::PortInUse { proto, ip, port }
        } else {
            io(e)
        });
    }
    if proto == Proto::Tcp {
        socket.listen(1).map_err(io)?;
    }
    let bound = socket
        .local_addr()
        .map_err(io)?
        .as_socket_ipv4()
        .map(|a| a.port())
        .unwrap_or(port);
    tracing::debug!(%proto, %ip, port = bound, "host port held");
    Ok(HeldPort {
        proto,
        ip,
        port: bound,
        _socket: socket,
    })
}

/// Holds the first free port of `start..=end` (a published host range such as
/// `8000-8010:80`); all taken is [`NetworkError::PortRangeInUse`].
pub fn hold_in_range(
    proto: Proto,
    ip: Ipv4Addr,
    start: u16,
    end: u16,
) -> Result<HeldPort, NetworkError> {
    for port in start..=end {
        match hold(proto, ip, port) {
            Ok(held) => return Ok(held),
            Err(NetworkError::PortInUse { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(NetworkError::PortRangeInUse {
        proto,
        ip,
        start,
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_port_is_reported() {
        let held = hold(Proto::Tcp, Ipv4Addr::LOCALHOST, 0).expect("hold");
        assert_ne!(held.port, 0);
        let udp = hold(Proto::Udp, Ipv4Addr::LOCALHOST, 0).expect("hold");
        assert_ne!(udp.port, 0);
    }

    #[test]
    fn second_hold_is_refused_in_dockerds_words() {
        let held = hold(Proto::Tcp, Ipv4Addr::LOCALHOST, 0).expect("hold");
        let err = hold(Proto::Tcp, Ipv4Addr::LOCALHOST, held.port).expect_err("second hold");
        assert!(matches!(err, NetworkError::PortInUse { port, .. } if port == held.port));
        assert_eq!(
            err.to_string(),
            format!(
                "Bind for 127.0.0.1:{} failed: port is already allocated",
                held.port
            )
        );
        // Other programs cannot take it either.
        assert!(std::net::TcpListener::bind(("127.0.0.1", held.port)).is_err());
        // UDP is a separate space.
        assert!(hold(Proto::Udp, Ipv4Addr::LOCALHOST, held.port).is_ok());
        // Every address overlaps one.
        let any = hold(Proto::Tcp, Ipv4Addr::UNSPECIFIED, held.port);
        assert!(matches!(any, Err(NetworkError::PortInUse { .. })));
    }

    #[test]
    fn udp_hold_is_exclusive() {
        let held = hold(Proto::Udp, Ipv4Addr::LOCALHOST, 0).expect("hold");
        assert!(matches!(
            hold(Proto::Udp, Ipv4Addr::LOCALHOST, held.port),
            Err(NetworkError::PortInUse { .. })
        ));
        assert!(std::net::UdpSocket::bind(("127.0.0.1", held.port)).is_err());
    }

    #[test]
    fn drop_frees_the_port() {
        let held = hold(Proto::Tcp, Ipv4Addr::LOCALHOST, 0).expect("hold");
        let port = held.port;
        drop(held);
        let again = hold(Proto::Tcp, Ipv4Addr::LOCALHOST, port).expect("re-hold");
        assert_eq!(again.port, port);
    }

    #[test]
    fn range_skips_taken_ports() {
        // Find two adjacent free ports, take the first, then ask for the range.
        let (first, held) = (0..50)
            .find_map(|_| {
                let a = hold(Proto::Tcp, Ipv4Addr::LOCALHOST, 0).ok()?;
                let next = a.port.checked_add(1)?;
                let b = hold(Proto::Tcp, Ipv4Addr::LOCALHOST, next).ok()?;
                drop(b);
                Some((a.port, a))
            })
            .expect("two adjacent free ports");
        let got = hold_in_range(Proto::Tcp, Ipv4Addr::LOCALHOST, first, first + 1).expect("range");
        assert_eq!(got.port, first + 1);
        let err = hold_in_range(Proto::Tcp, Ipv4Addr::LOCALHOST, first, first + 1)
            .expect_err("range full");
        assert_eq!(
            err.to_string(),
            format!(
                "Bind for 127.0.0.1:{first}-{} failed: port is already allocated",
                first + 1
            )
        );
        drop(held);
    }
}
