//! `speaker-ctl denials`: the syscalls containers' filters did not allow,
//! per container and phase, from the kernel's audit records.
use anyhow::Result;
use std::time::Duration;

use crate::cli::DenialsArgs;
use crate::container::denials::{collect, follow, Denial, Source};
use crate::container::state::ContainerState;
use crate::sys::output::outln;

fn time(d: &Denial) -> String {
    match d.record.monotonic_us {
        Some(us) => format!("{:.6}", us as f64 / 1e6),
        None => format!("@{}.{:03}", d.record.time_unix_ms / 1000, d.record.time_unix_ms % 1000),
    }
}

fn line(d: &Denial, json: bool) -> Result<String> {
    if json {
        let mut v = serde_json::to_value(d)?;
        v["action"] = serde_json::Value::from(d.action());
        return Ok(serde_json::to_string(&v)?);
    }
    Ok(format!(
        "{:<14} {:<20} {:<9} {:>7} {:<16} {:<18} {}",
        time(d),
        d.cid.as_deref().unwrap_or("(unattributed)"),
        d.phase.map(|p| p.name()).unwrap_or("-"),
        d.record.pid,
        d.record.comm,
        d.record.syscall_label(),
        d.action()
    ))
}

pub fn run(args: DenialsArgs) -> Result<i32> {
    let source = match &args.from_log {
        Some(p) => Source::File(p),
        None => Source::Kmsg,
    };
    // An unknown container is an error, not an empty table: without its
    // state no record can be attributed to it.
    if let Some(cid) = &args.cid {
        ContainerState::load(cid)?;
    }
    let list = collect(args.cid.as_deref(), &source)?;
    if !args.json {
        outln!("{:<14} {:<20} {:<9} {:>7} {:<16} {:<18} ACTION", "TIME", "CONTAINER", "PHASE", "PID", "COMM", "SYSCALL")?;
    }
    if args.json && !args.follow {
        let v: Vec<serde_json::Value> =
            list.iter().map(|d| serde_json::from_str(&line(d, true)?).map_err(anyhow::Error::from)).collect::<Result<_>>()?;
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(0);
    }
    for d in &list {
        outln!("{}", line(d, args.json)?)?;
    }
    if args.follow {
        let err = std::cell::RefCell::new(None);
        // Until the reader goes away (`| head`), or a line cannot be made.
        follow(
            args.cid.as_deref(),
            Duration::from_secs(1),
            || err.borrow().is_some(),
            |d| {
                if let Err(e) = line(d, args.json).and_then(|l| Ok(outln!("{l}")?)) {
                    *err.borrow_mut() = Some(e);
                }
            },
        )?;
        if let Some(e) = err.into_inner() {
            return Err(e);
        }
    }
    Ok(0)
}
