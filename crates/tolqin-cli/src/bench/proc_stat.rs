//! CPU time and memory of a process, from `/proc` (Linux).

use std::io;

/// `USER_HZ`: the unit of the CPU times in `/proc/PID/stat`; 100 on every Linux ABI.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy)]
pub struct ProcStat {
    /// User plus system CPU time, in seconds.
    pub cpu_secs: f64,
    /// Resident set size, in bytes.
    pub rss_bytes: u64,
}

impl ProcStat {
    /// Reads `/proc/PID/stat` (utime + stime) and `/proc/PID/status` (VmRSS).
    pub fn read(pid: u32) -> io::Result<Self> {
        Self::read_path(&pid.to_string())
    }

    /// The same for this process.
    pub fn own() -> io::Result<Self> {
        Self::read_path("self")
    }

    fn read_path(pid: &str) -> io::Result<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // The command name (field 2) may contain spaces and parentheses: fields are counted
        // from the last ')'. utime and stime are fields 14 and 15.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .ok_or_else(|| bad("/proc/PID/stat"))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| -> io::Result<f64> {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .map(|t| t as f64)
                .ok_or_else(|| bad("/proc/PID/stat"))
        };
        // After ')': field 3 (state) is index 0, so field 14 is index 11.
        let cpu_secs = (ticks(11)? + ticks(12)?) / CLOCK_TICKS_PER_SEC;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .ok_or_else(|| bad("/proc/PID/status"))?;
        Ok(ProcStat {
            cpu_secs,
            rss_bytes: rss_kib * 1024,
        })
    }
}

/// CPU time used by every process on the machine (all CPUs: user, nice, system, irq, softirq,
/// steal), in seconds, from the first line of `/proc/stat`.
pub fn machine_busy_secs() -> io::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().ok_or_else(|| bad("/proc/stat"))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    if v.len() < 8 {
        return Err(bad("/proc/stat"));
    }
    let busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    Ok(busy as f64 / CLOCK_TICKS_PER_SEC)
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected format of {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let s = ProcStat::own().unwrap();
        assert!(s.rss_bytes > 0);
        assert!(s.cpu_secs >= 0.0);
    }
}
