//! Programs a scenario starts (a user's client, a middlebox): each in its
//! own process group, its output kept, stopped with a signal, a grace and
//! then SIGKILL to the whole group - and never left behind: a watchdog
//! kills the group when grpcdoc goes away, even by SIGKILL.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;

/// At most this much of a program's output is kept (the start and the
/// end stay readable: the middle is dropped).
const KEEP_OUTPUT: usize = 4 << 20;

/// How a program ended.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Ended {
    /// Its exit code, when it exited (not killed by a signal).
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// grpcdoc stopped it (the run was over); else it ended by itself.
    pub stopped: bool,
}

impl Ended {
    pub fn describe(&self) -> String {
        match (self.code, self.signal) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            (None, None) => "still running".into(),
        }
    }
}

pub struct Program {
    child: Option<tokio::process::Child>,
    pid: Option<i32>,
    /// Its stdout and stderr, interleaved as they came.
    output: Arc<Mutex<Vec<u8>>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// Holding it open keeps the watchdog waiting; closed (by drop, or by
    /// grpcdoc's death) the watchdog kills the group.
    watchdog_stdin: Option<std::process::ChildStdin>,
    watchdog_proc: Option<std::process::Child>,
    ended: Option<Ended>,
}

fn keep(out: &Mutex<Vec<u8>>, bytes: &[u8]) {
    if let Ok(mut o) = out.lock() {
        if o.len() + bytes.len() > KEEP_OUTPUT {
            let cut = (o.len() + bytes.len() - KEEP_OUTPUT).min(o.len());
            let half = KEEP_OUTPUT / 2;
            let len = o.len();
            if len > half {
                o.drain(half..half + cut.min(len - half));
            }
        }
        o.extend_from_slice(bytes);
    }
}

/// Sends `sig` to the process group `pgid`.
pub fn signal_group(pgid: i32, sig: i32) {
    // SAFETY: kill(2) on a process group this process started; no memory
    // is touched.
    unsafe {
        libc::kill(-pgid, sig);
    }
}

/// A signal by name (`TERM`, `SIGINT`, `9`).
pub fn signal_number(name: &str) -> Option<i32> {
    let n = name.trim().trim_start_matches("SIG").to_ascii_uppercase();
    Some(match n.as_str() {
        "TERM" => libc::SIGTERM,
        "INT" => libc::SIGINT,
        "HUP" => libc::SIGHUP,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        other => other.parse().ok().filter(|s| (1..=64).contains(s))?,
    })
}

impl Program {
    /// Starts `argv` (the program found on PATH or by path) with `env`
    /// added, in its own process group.
    pub fn spawn(
        program: &Path,
        args: &[String],
        env: &[(String, String)],
    ) -> std::io::Result<Program> {
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().and_then(|p| i32::try_from(p).ok());
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        let streams: [Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>; 2] = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ];
        for mut s in streams.into_iter().flatten() {
            let out = output.clone();
            readers.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    keep(&out, &buf[..n]);
                }
            }));
        }
        // The watchdog: a shell that ignores the terminal's signals, waits
        // for its stdin (held by grpcdoc) to close, and kills the group.
        let (watchdog_proc, watchdog) = match pid {
            Some(pgid) => {
                let script =
                    format!("trap '' INT TERM HUP; cat >/dev/null; kill -9 -{pgid} 2>/dev/null");
                match std::process::Command::new("sh")
                    .args(["-c", &script])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                {
                    Ok(mut w) => {
                        let stdin = w.stdin.take();
                        (Some(w), stdin)
                    }
                    Err(_) => (None, None),
                }
            }
            None => (None, None),
        };
        Ok(Program {
            child: Some(child),
            pid,
            output,
            readers,
            watchdog_stdin: watchdog,
            watchdog_proc,
            ended: None,
        })
    }

    pub fn pid(&self) -> Option<i32> {
        self.pid
    }

    /// Whether it has ended by itself, and how.
    pub fn try_ended(&mut self) -> Option<Ended> {
        if self.ended.is_none() {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.ended = Some(ended(st, false));
            }
        }
        self.ended.clone()
    }

    /// Stops it: `signal` to its group, `grace` to end, then SIGKILL to the
    /// group. Returns how it ended.
    pub async fn stop(&mut self, signal: i32, grace: Duration) -> Ended {
        if let Some(e) = self.try_ended() {
            self.finish().await;
            return e;
        }
        let Some(mut child) = self.child.take() else {
            return self.ended.clone().unwrap_or_default();
        };
        if let Some(pgid) = self.pid {
            signal_group(pgid, signal);
        }
        let status = match tokio::time::timeout(grace, child.wait()).await {
            Ok(Ok(st)) => Some(st),
            _ => {
                if let Some(pgid) = self.pid {
                    signal_group(pgid, libc::SIGKILL);
                }
                tokio::time::timeout(Duration::from_secs(2), child.wait())
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
        };
        // The rest of its group too (children it started).
        if let Some(pgid) = self.pid {
            signal_group(pgid, libc::SIGKILL);
        }
        let e = status.map_or_else(Ended::default, |st| ended(st, true));
        self.ended = Some(e.clone());
        self.finish().await;
        e
    }

    /// Waits for its output to be read whole (briefly).
    async fn finish(&mut self) {
        for r in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(2), r).await;
        }
    }

    /// Its output so far (stdout and stderr), as text.
    pub fn output(&self) -> String {
        self.output
            .lock()
            .map(|o| String::from_utf8_lossy(&o).into_owned())
            .unwrap_or_default()
    }
}

fn ended(st: std::process::ExitStatus, stopped: bool) -> Ended {
    use std::os::unix::process::ExitStatusExt;
    Ended {
        code: st.code(),
        signal: st.signal(),
        stopped,
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if let (Some(pgid), true) = (self.pid, self.child.is_some()) {
            signal_group(pgid, libc::SIGKILL);
        }
        // Closing its stdin lets the watchdog end (it kills a group that is
        // gone already); reap it.
        self.watchdog_stdin.take();
        if let Some(mut w) = self.watchdog_proc.take() {
            std::thread::spawn(move || {
                let _ = w.wait();
            });
        }
    }
}
