//! `speaker-ctl trace`: the CLI's options handed to the library's tracer.
use anyhow::Result;

use crate::cli::TraceArgs;
use crate::trace::TraceOptions;

pub fn run(args: TraceArgs) -> Result<i32> {
    crate::trace::run(&TraceOptions {
        ready: args.ready,
        workload: args.workload,
        running_for: args.running_for,
        stop_after: args.stop_after,
        auto_window: args.auto_window,
        auto_windows: args.auto_windows,
        mode: args.mode.name().to_string(),
        name: args.name,
        output: args.output,
        cmd: args.cmd,
        reload_signal: args.reload_signal,
        reload_ready: args.reload_ready,
        shutdown_timeout: args.shutdown_timeout,
        one_shot: args.one_shot,
    })
}
