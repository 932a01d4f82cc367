//! `wrk` (Debian's package) as the load generator for single-request
//! benchmarks: it is written in C and keeps connections alive, so on two
//! cores it takes less CPU from the server than any generator of ours.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::service::run_ok;

/// Lua for a wrk script: every answer must be 200 and contain NEEDLE;
/// the others are counted and reported as "Bad answers: N".
pub const CHECK_BODY: &str = r#"
local threads = {}
function setup(thread) table.insert(threads, thread) end
bad = 0
function response(status, headers, body)
  if status ~= 200 or not body:find("NEEDLE", 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("bad") end
  io.write(string.format("Bad answers: %d\n", n))
end
"#;

/// Runs wrk (with a Lua script, if given) for `seconds`; returns requests per second,
/// the 99th percentile latency, and what went wrong if any answer was not
/// 2xx or any socket failed.
pub fn run(
    url: &str,
    script: Option<&Path>,
    connections: usize,
    seconds: u32,
) -> Result<(f64, Duration, Option<String>)> {
    let threads = connections.clamp(1, 2);
    let mut cmd = Command::new("wrk");
    cmd.args(["-t", &threads.to_string()])
        .args(["-c", &connections.to_string()])
        .args(["-d", &format!("{seconds}s")])
        .arg("--latency");
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    let out = run_ok(cmd.arg(url))?;
    parse(&out)
}

fn parse(out: &str) -> Result<(f64, Duration, Option<String>)> {
    let rps = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("wrk printed no Requests/sec:\n{out}"))?;
    let p99 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .and_then(|v| duration(v.trim()))
        .with_context(|| format!("wrk printed no 99% latency:\n{out}"))?;
    let errors = out
        .lines()
        .filter(|l| {
            l.contains("Non-2xx")
                || l.contains("Socket errors")
                || (l.starts_with("Bad answers:") && l.trim() != "Bad answers: 0")
        })
        .map(|l| l.trim().to_owned())
        .collect::<Vec<_>>();
    if rps <= 0.0 {
        anyhow::bail!("wrk completed no request:\n{out}");
    }
    Ok((rps, p99, (!errors.is_empty()).then(|| errors.join("; "))))
}

/// wrk's "812.00us", "1.23ms", "2.01s".
fn duration(s: &str) -> Option<Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let v: f64 = num.parse().ok()?;
    let secs = match unit {
        "us" => v / 1e6,
        "ms" => v / 1e3,
        "s" => v,
        "m" => v * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrks_summary() {
        let out = "Running 10s test @ https://127.0.0.1:8443/\n  Latency Distribution\n     50%  512.00us\n     75%    1.01ms\n     90%    2.00ms\n     99%    4.50ms\n  200000 requests in 10.00s, 1.00GB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:  20000.50\nTransfer/sec:    100.00MB\n";
        let (rps, p99, errors) = parse(out).unwrap_or_else(|e| panic!("{e}"));
        assert!((rps - 20000.5).abs() < 1e-6);
        assert_eq!(p99, Duration::from_micros(4500));
        assert_eq!(errors.as_deref(), Some("Non-2xx or 3xx responses: 3"));
        assert_eq!(duration("812.00us"), Some(Duration::from_micros(812)));
        assert_eq!(duration("2.00s"), Some(Duration::from_secs(2)));
    }
}
