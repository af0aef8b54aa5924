//! Every `redis-cli` example of the README, run against a real server through the
//! real `redis-cli`, must print what the README shows: the README cannot rot.
//!
//! A block is marked by `<!-- readme-test: <server flags> -->` on the line before its
//! ```` ```text ```` fence; its lines starting with `127.0.0.1:6379> ` are the
//! commands, the lines after each the output `redis-cli` prints for it.

use std::process::Command;
use std::time::Duration;

use crate::common::*;

const PROMPT: &str = "127.0.0.1:6379> ";
const MARK: &str = "<!-- readme-test:";

/// One example: the server's flags, the commands, the expected output.
struct Example {
    line: usize,
    flags: Vec<String>,
    commands: Vec<String>,
    expected: String,
}

fn examples(readme: &str) -> Vec<Example> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(flags) = lines[i].trim().strip_prefix(MARK) else {
            i += 1;
            continue;
        };
        let flags: Vec<String> = flags
            .trim_end_matches("-->")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let start = i;
        i += 1;
        assert_eq!(
            lines.get(i).map(|l| l.trim()),
            Some("```text"),
            "README line {}",
            i + 1
        );
        i += 1;
        let (mut commands, mut expected) = (Vec::new(), String::new());
        while i < lines.len() && lines[i].trim() != "```" {
            match lines[i].strip_prefix(PROMPT) {
                Some(cmd) => commands.push(cmd.to_string()),
                None => {
                    expected.push_str(lines[i]);
                    expected.push('\n');
                }
            }
            i += 1;
        }
        out.push(Example {
            line: start + 1,
            flags,
            commands,
            expected,
        });
    }
    out
}

#[test]
#[cfg_attr(
    not(have_redis_cli),
    ignore = "needs redis-cli (apt-get install redis-tools)"
)]
fn every_redis_cli_example_in_the_readme_prints_what_the_readme_shows() {
    let readme = include_str!("../../README.md");
    let examples = examples(readme);
    assert!(examples.len() >= 2, "the README's examples were not found");
    for ex in examples {
        let flags: Vec<&str> = ex.flags.iter().map(String::as_str).collect();
        let srv = TestServer::start(&flags);
        let mut cli = Command::new("redis-cli");
        cli.args([
            "-h",
            "127.0.0.1",
            "-p",
            &srv.addr.port().to_string(),
            "--no-raw",
        ]);
        let input = ex.commands.join("\n") + "\n";
        let got = run_program(cli, Some(&input), Duration::from_secs(60)).stdout;
        assert_eq!(
            got, ex.expected,
            "the README's example at line {} (flags {:?}) printed something else",
            ex.line, ex.flags
        );
    }
}
