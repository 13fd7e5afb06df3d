//! Tracing a service syscall by syscall, per phase (`speaker-ctl trace`).
