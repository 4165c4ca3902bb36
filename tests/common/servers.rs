//! Real servers on loopback for the tests: knot (DNS), slapd (LDAP) and Python's http.server
//! (CRLs, AIA issuers, IPKIX URLs). Each runs in its own temporary directory on a free port and is
//! stopped when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port free for TCP and UDP on 127.0.0.1, chosen below Linux's ephemeral range (32768+) so an
/// outgoing connection can never take it between now and the server binding it, and never the same
/// twice in one test binary (tests run in parallel threads).
pub(crate) fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let start = std::process::id().wrapping_mul(7919);
    loop {
        let port = (LOW + (start.wrapping_add(NEXT.fetch_add(1, Ordering::SeqCst))) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited at start ({status})");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not listen on port {port}");
}

fn need(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).exists()))
        .unwrap_or(false)
        || ["/usr/sbin", "/sbin"].iter().any(|d| std::path::Path::new(d).join(program).exists());
    assert!(found, "{program} is not installed: run `bash scripts/test.sh` (it installs the test peers)");
}

pub(crate) struct Server {
    pub port: u16,
    child: Child,
    pub dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts `program` quietly and waits until it listens on `port`.
    fn start(program: &str, args: &[&str], port: u16, dir: tempfile::TempDir) -> Server {
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        wait_for_port(port, program, &mut child);
        Server { port, child, dir }
    }
}

/// Any server program on `port` (started with `args`), stopped when dropped.
pub(crate) fn start_program(program: &str, args: &[String], port: u16) -> Server {
    need(program);
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(program, &args, port, dir)
}

/// knotd serving `zones` (origin, zone-file body without $ORIGIN/SOA; those are added).
pub(crate) fn knot(zones: &[(&str, String)]) -> Server {
    knot_on(free_port(), zones)
}

/// As `knot`, on a port chosen beforehand (when configuration written earlier names it).
pub(crate) fn knot_on(port: u16, zones: &[(&str, String)]) -> Server {
    need("knotd");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let mut conf = format!(
        "server:\n  listen: 127.0.0.1@{port}\n  rundir: {d}\n  user: root:root\n\
         control:\n  listen: {d}/knot.sock\ndatabase:\n  storage: {d}\n\
         log:\n  - target: stderr\n    any: warning\nzone:\n"
    );
    for (origin, body) in zones {
        let file = format!("{d}/{origin}.zone");
        let text = format!(
            "$ORIGIN {origin}.\n$TTL 300\n@ IN SOA ns.{origin}. admin.{origin}. 1 3600 600 86400 60\n\
             @ IN NS ns\nns IN A 127.0.0.1\n{body}\n"
        );
        std::fs::write(&file, text).unwrap();
        conf.push_str(&format!("  - domain: {origin}\n    file: {file}\n    storage: {d}\n"));
    }
    std::fs::write(dir.path().join("knot.conf"), conf).unwrap();
    Server::start("knotd", &["-c", &format!("{d}/knot.conf")], port, dir)
}

/// slapd with one database for `suffix` (dc=...), loaded with `ldif` (entries below the suffix;
/// the suffix entry itself is added here).
pub(crate) fn slapd(suffix_dc: &str, ldif: &str) -> Server {
    need("slapd");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::create_dir(dir.path().join("db")).unwrap();
    let port = free_port();
    let suffix = format!("dc={suffix_dc}");
    let conf = format!(
        "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
         include /etc/ldap/schema/inetorgperson.schema\npidfile {d}/slapd.pid\n\
         modulepath /usr/lib/ldap\nmoduleload back_mdb\ndatabase mdb\nsuffix \"{suffix}\"\n\
         rootdn \"cn=admin,{suffix}\"\nrootpw secret\ndirectory {d}/db\n"
    );
    std::fs::write(dir.path().join("slapd.conf"), conf).unwrap();
    let url = format!("ldap://127.0.0.1:{port}/");
    let server = Server::start("slapd", &["-d", "0", "-f", &format!("{d}/slapd.conf"), "-h", &url], port, dir);
    let all = format!(
        "dn: {suffix}\nobjectClass: dcObject\nobjectClass: organization\no: {suffix_dc}\ndc: {suffix_dc}\n\n{ldif}"
    );
    std::fs::write(server.path("data.ldif"), all).unwrap();
    let add = super::run(
        "ldapadd",
        &[
            "-x",
            "-H",
            &format!("ldap://127.0.0.1:{port}"),
            "-D",
            &format!("cn=admin,{suffix}"),
            "-w",
            "secret",
            "-f",
            &format!("{d}/data.ldif"),
        ],
        None,
        &[],
    );
    assert_eq!(add.status, 0, "ldapadd: {}", add.stderr);
    server
}

/// An LDIF entry `cn=NAME,dc=SUFFIX` with `mail` and a certificate in `attribute`.
pub(crate) fn ldap_entry(name: &str, suffix_dc: &str, mail: &str, attribute: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!(
        "dn: cn={name},dc={suffix_dc}\nobjectClass: inetOrgPerson\ncn: {name}\nsn: {name}\nmail: {mail}\n{attribute}:: {b64}\n\n"
    )
}

/// Python's http.server publishing the files put in its directory.
pub(crate) fn http() -> Server {
    need("python3");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let root = dir.path().display().to_string();
    let port_text = port.to_string();
    Server::start("python3", &["-m", "http.server", "--bind", "127.0.0.1", &port_text, "--directory", &root], port, dir)
}

/// A TCP connection to 127.0.0.1:`port` from the loopback address `source` (127.0.0.2, say): a
/// second host on one machine, for limits that count per peer address.
pub(crate) fn connect_from(source: [u8; 4], port: u16) -> TcpStream {
    use std::os::fd::FromRawFd;
    let address = |ip: [u8; 4], port: u16| {
        // SAFETY: a plain C struct; all zeroes is a valid value of it.
        let mut a: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        a.sin_family = libc::AF_INET as libc::sa_family_t;
        a.sin_port = port.to_be();
        a.sin_addr.s_addr = u32::from_ne_bytes(ip);
        a
    };
    let size = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a new socket, bound and connected with valid addresses of the right size; on
    // success it is handed to a TcpStream, which owns it from then on.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket");
        let local = address(source, 0);
        assert_eq!(libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), size), 0, "bind {source:?}");
        let remote = address([127, 0, 0, 1], port);
        assert_eq!(libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), size), 0, "connect {port}");
        TcpStream::from_raw_fd(fd)
    }
}
