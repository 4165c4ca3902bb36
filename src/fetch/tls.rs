//! TLS for ureq through the node's one TLS stack: the `SslConnector` the caller configured
//! (TLS 1.2+, its trust anchors, its verification), wrapped around ureq's TCP transport, so the
//! handshake and every read and write keep ureq's timeouts.

use std::fmt;
use std::io::{Read, Write};

use openssl::ssl::{HandshakeError, SslConnector, SslStream};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, TcpConnector, Transport, TransportAdapter,
};

/// TCP, then TLS for https URLs.
pub(super) fn connector(tls: SslConnector) -> impl Connector<(), Out = impl Transport> {
    ().chain(TcpConnector::default()).chain(OpensslConnector(tls))
}

struct OpensslConnector(SslConnector);

impl fmt::Debug for OpensslConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpensslConnector")
    }
}

impl<In: Transport> Connector<In> for OpensslConnector {
    type Out = Either<In, OpensslTransport>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else { return Ok(None) };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().unwrap_or_default().trim_matches(['[', ']']).to_string();
        let mut adapter = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        adapter.set_timeout(details.timeout);
        let stream = self.0.connect(&host, adapter).map_err(|e| {
            let why = match e {
                HandshakeError::Failure(m) | HandshakeError::WouldBlock(m) => m.error().to_string(),
                HandshakeError::SetupFailure(stack) => stack.to_string(),
            };
            ureq::Error::Io(std::io::Error::other(format!("TLS handshake with {host}: {why}")))
        })?;
        let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        Ok(Some(Either::B(OpensslTransport { buffers, stream })))
    }
}

pub(super) struct OpensslTransport {
    buffers: LazyBuffers,
    stream: SslStream<TransportAdapter>,
}

impl fmt::Debug for OpensslTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpensslTransport")
    }
}

impl Transport for OpensslTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
