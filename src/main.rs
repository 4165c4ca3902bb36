fn main() {
    // Behave like other Unix tools when the reader goes away (`hisp cert list | head`):
    // end quietly on SIGPIPE instead of failing to print.
    // SAFETY: setting a signal disposition at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        // Keep large buffers (messages, the KEK derivation's 19 MiB) in mmap'd memory returned to
        // the system when freed; glibc would otherwise raise this threshold after the first free
        // and keep later message buffers on the heap, inflating peak memory.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
    std::process::exit(hisp::cli::run());
}
