//! A transport for fuzzing: the "server" sends fixed bytes (in pieces of varying size, as a
//! network would) and takes whatever the client writes.

use std::fmt;

use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport};

pub(super) struct Canned(pub(super) Vec<u8>);

impl fmt::Debug for Canned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Canned")
    }
}

impl Connector<()> for Canned {
    type Out = CannedTransport;

    fn connect(&self, details: &ConnectionDetails, _: Option<()>) -> Result<Option<Self::Out>, ureq::Error> {
        let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        Ok(Some(CannedTransport { buffers, answer: self.0.clone(), sent: 0 }))
    }
}

pub(super) struct CannedTransport {
    buffers: LazyBuffers,
    answer: Vec<u8>,
    sent: usize,
}

impl fmt::Debug for CannedTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CannedTransport")
    }
}

impl Transport for CannedTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, _amount: usize, _timeout: NextTimeout) -> Result<(), ureq::Error> {
        Ok(())
    }

    fn await_input(&mut self, _timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let rest = &self.answer[self.sent..];
        // Pieces of 1 to 1,500 bytes, the size taken from the answer itself so fuzzing varies it.
        let piece = 1 + rest.first().map_or(0, |&b| usize::from(b) * 6);
        let input = self.buffers.input_append_buf();
        let amount = rest.len().min(piece).min(input.len());
        input[..amount].copy_from_slice(&rest[..amount]);
        self.buffers.input_appended(amount);
        self.sent += amount;
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.sent < self.answer.len()
    }
}
