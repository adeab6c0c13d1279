/// The TLS configuration of the io_uring benchmark servers.
library;

import 'package:iouring_transport/iouring_transport.dart';

import 'bench_options.dart';

/// The certificate and key of [options] (`--cert`, `--key`) for our servers.
Future<TlsContext> ourTlsContext(BenchOptions options) =>
    TlsContext.serverFromFiles(
        certificateChain: options.cert!, privateKey: options.key!);
