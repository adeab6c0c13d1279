/// The command line the Dart benchmark servers share:
/// `--impl iouring|dartio [--port P] [--cert CHAIN.pem --key KEY.pem]`.
library;

import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';

import '../../example/support/cli.dart';

/// Which sockets a benchmark server runs on, its port (0: any), and for TLS
/// the PEM files of its certificate chain and key (both null: plaintext).
typedef BenchOptions = ({bool iouring, int port, String? cert, String? key});

/// The options of [program] in [arguments], or null after the usage error
/// was reported (exit code 64). With [tls] `--cert` and `--key` are
/// required; else they are optional and both or neither must be given.
BenchOptions? parseBenchOptions(String program, List<String> arguments,
    {bool tls = false}) {
  final usage = '$program.dart --impl iouring|dartio [--port P] '
      '${tls ? '' : '['}--cert CHAIN.pem --key KEY.pem${tls ? '' : ']'}';
  try {
    final options = parseOptions(arguments, {'impl', 'port', 'cert', 'key'});
    final port =
        numberOption(options, 'port', fallback: 0, min: 0, max: 65535);
    final cert = options['cert'], key = options['key'];
    if ((cert == null) != (key == null) || (tls && cert == null)) {
      throw const FormatException('--cert and --key go together');
    }
    return switch (options['impl']) {
      'iouring' => (iouring: true, port: port, cert: cert, key: key),
      'dartio' => (iouring: false, port: port, cert: cert, key: key),
      _ => throw const FormatException('--impl must be iouring or dartio'),
    };
  } on FormatException catch (error) {
    usageError(program, error.message, usage);
    return null;
  }
}

/// The TLS configuration of [options] for our servers (`--cert`, `--key`).
Future<TlsContext> ourTlsContext(BenchOptions options) =>
    TlsContext.serverFromFiles(
        certificateChain: options.cert!, privateKey: options.key!);

/// The same certificate and key as dart:io's servers take them.
SecurityContext dartIoSecurityContext(BenchOptions options) =>
    SecurityContext()
      ..useCertificateChain(options.cert!)
      ..usePrivateKey(options.key!);
