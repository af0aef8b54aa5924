//! Several serving threads (`--threads 3`): connections are dealt to three
//! single-threaded runtimes and the window stays one, exact across them; SIGTERM
//! still stops every thread after their last replies.

use std::io::Write;
use std::time::Duration;

use crate::common::{Spawned, event, read_n, resp_str};

/// Reads one bulk-string reply.
fn read_bulk(s: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut header = Vec::new();
    while !header.ends_with(b"\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).expect("header byte");
        header.push(b[0]);
    }
    let len: usize = String::from_utf8_lossy(&header[1..header.len() - 2])
        .parse()
        .expect("bulk length");
    let mut body = vec![0u8; len + 2];
    s.read_exact(&mut body).expect("bulk body");
    body.truncate(len);
    String::from_utf8_lossy(&body).into_owned()
}

#[test]
fn connections_on_every_thread_share_one_exact_window() {
    let mut server = Spawned::start(&["--threads", "3", "--clock", "manual"]);
    assert!(
        server.log().contains("threads=3"),
        "the server reports three serving threads:\n{}",
        server.log()
    );
    let mut clock = server.raw();
    clock.write_all(&resp_str(&["EVT.CLOCK"])).expect("write");
    let reply = String::from_utf8(read_n(&mut clock, 13)).expect("utf8");
    let now: i64 = reply.trim_start_matches(':').trim().parse().expect("clock");

    // Nine connections: three per thread, each writing its own user's events while
    // the others write theirs.
    let writers: Vec<_> = (0..9)
        .map(|c| {
            let mut s = server.raw();
            std::thread::spawn(move || {
                let mut batch = Vec::new();
                for i in 0..500 {
                    let json = event(&format!("user{c}"), "click", now, f64::from(i));
                    batch.extend_from_slice(&resp_str(&["EVT.ADD", &json]));
                }
                s.write_all(&batch).expect("write");
                let replies = read_n(&mut s, 500 * 5);
                assert_eq!(replies, b"+OK\r\n".repeat(500), "connection {c}");
                s
            })
        })
        .collect();
    let connections: Vec<_> = writers
        .into_iter()
        .map(|w| w.join().expect("writer"))
        .collect();

    let mut q = server.raw();
    q.write_all(&resp_str(&["EVT.TOTAL"])).expect("write");
    assert_eq!(read_n(&mut q, 7), b":4500\r\n");
    for c in 0..9 {
        q.write_all(&resp_str(&["EVT.USER", &format!("user{c}")]))
            .expect("write");
        assert_eq!(read_n(&mut q, 6), b":500\r\n", "user{c}");
    }
    q.write_all(&resp_str(&["CLIENT", "LIST"])).expect("write");
    let list = read_bulk(&mut q);
    assert!(
        list.matches("id=").count() >= 11,
        "every connection is listed, whatever its thread:\n{list}"
    );
    drop(connections);

    // A graceful stop ends every thread.
    let pid = server.pid().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = server
        .wait_exit(Duration::from_secs(15))
        .expect("the server exits after SIGTERM");
    assert!(exit.success(), "exit status {exit:?}");
}
