//! Exit codes are API (README, `--help`): one place maps outcomes to them.

use std::process::ExitCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: everything worked.
    Success,
    /// 1: a check failed (scenario expectation, load threshold).
    CheckFailed,
    /// 2: bad input or environment (also every error returned as `Err`).
    Input,
    /// 3: a check that was asked for could not be made (doctor: a policy
    /// not measured); nothing failed, nothing is proved either.
    Incomplete,
    /// 130: interrupted, after printing what was gathered.
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::CheckFailed => 1,
            Exit::Input => 2,
            Exit::Incomplete => 3,
            Exit::Interrupted => 130,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e.code())
    }
}
