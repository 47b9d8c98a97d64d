//! Whether a server we started is the one listening on its port.
//!
//! A free port is found by binding port 0 and letting it go; until the server binds it,
//! another test's server (or a program beside the tests) can take it. The late server then
//! fails to bind and exits, and a readiness check that only connects would talk to the
//! other process: a test cloning another test's repository, mid-deletion. So readiness asks
//! the kernel who holds the listening socket.

use std::path::Path;

/// Whether process `pid` holds a socket listening on TCP port `port` (IPv4 or IPv6).
pub fn listens_on(pid: u32, port: u16) -> bool {
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| listening_inodes(&text, port))
        .collect();
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(Path::new("/proc").join(pid.to_string()).join("fd")) else {
        return false;
    };
    fds.filter_map(Result::ok).any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| {
            let target = target.to_string_lossy();
            inodes
                .iter()
                .any(|inode| *target == format!("socket:[{inode}]"))
        })
    })
}

/// The inodes of the sockets in a `/proc/net/tcp` table that listen on `port`.
fn listening_inodes(table: &str, port: u16) -> Vec<String> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit(':').next()?;
            let listening =
                u16::from_str_radix(local_port, 16).ok()? == port && *fields.get(3)? == LISTEN;
            listening.then(|| fields.get(9).map(|s| s.to_string()))?
        })
        .collect()
}

#[test]
fn a_listener_is_found_in_its_own_process_only() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    assert!(listens_on(std::process::id(), port));
    // pid 1 is not this test.
    assert!(!listens_on(1, port));
    drop(listener);
    assert!(!listens_on(std::process::id(), port));
}
