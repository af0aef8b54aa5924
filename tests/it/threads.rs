//! Several serving threads (`--threads 3`): connections are dealt to three
//! single-threaded runtimes and the window stays one, exact across them; SIGTERM
//! still stops every thread after their last replies.

use std::io::Write;
use std::time::Duration;

use crate::common::{R, Raw, Spawned, event, read_n, resp_str};

#[test]
fn connections_on_every_thread_share_one_exact_window() {
    let mut server = Spawned::start(&["--threads", "3", "--clock", "manual"]);
    assert!(
        server.log().contains("threads=3"),
        "the server reports three serving threads:\n{}",
        server.log()
    );
    let mut clock = Raw::connect(server.addr);
    let now = clock.cmd(&["EVT.CLOCK"]).int();

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

    let mut q = Raw::connect(server.addr);
    assert_eq!(q.cmd(&["EVT.TOTAL"]), R::Int(4500));
    for c in 0..9 {
        assert_eq!(
            q.cmd(&["EVT.USER", &format!("user{c}")]),
            R::Int(500),
            "user{c}"
        );
    }
    let list = q.cmd(&["CLIENT", "LIST"]).text();
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
