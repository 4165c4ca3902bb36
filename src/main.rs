fn main() {
    std::process::exit(hisp::cli::run());
}
