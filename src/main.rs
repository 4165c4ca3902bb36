fn main() {
    // Behave like other Unix tools when the reader goes away (`hisp cert list | head`):
    // end quietly on SIGPIPE instead of failing to print.
    // SAFETY: setting a signal disposition at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(hisp::cli::run());
}
