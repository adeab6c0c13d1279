/// The command line the Dart benchmark servers share:
/// `[--port P] [--cert CHAIN.pem --key KEY.pem]`. dart:io only: the dart:io
/// servers import nothing of the package, which a JIT VM would load for
/// them (its kernel costs about 2 MiB of peak memory; see
/// tool/dart_import_cost.sh).
library;

import 'dart:io';

import '../../example/support/cli.dart';

/// A benchmark server's port (0: any), and for TLS the PEM files of its
/// certificate chain and key (both null: plaintext).
typedef BenchOptions = ({int port, String? cert, String? key});

/// The options of [program] in [arguments], or null after the usage error
/// was reported (exit code 64). With [tls] `--cert` and `--key` are
/// required; else they are optional and both or neither must be given.
BenchOptions? parseBenchOptions(String program, List<String> arguments,
    {bool tls = false}) {
  final usage = '$program.dart [--port P] '
      '${tls ? '' : '['}--cert CHAIN.pem --key KEY.pem${tls ? '' : ']'}';
  try {
    final options = parseOptions(arguments, {'port', 'cert', 'key'});
    final port =
        numberOption(options, 'port', fallback: 0, min: 0, max: 65535);
    final cert = options['cert'], key = options['key'];
    if ((cert == null) != (key == null) || (tls && cert == null)) {
      throw const FormatException('--cert and --key go together');
    }
    return (port: port, cert: cert, key: key);
  } on FormatException catch (error) {
    usageError(program, error.message, usage);
    return null;
  }
}

/// The certificate and key of [options] as dart:io's servers take them.
SecurityContext dartIoSecurityContext(BenchOptions options) =>
    SecurityContext()
      ..useCertificateChain(options.cert!)
      ..usePrivateKey(options.key!);
