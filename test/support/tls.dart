/// Test certificates made with the `openssl` command: a CA, a server
/// certificate for `localhost` and 127.0.0.1 (subjectAltName), a client
/// certificate, and an untrusted ("rogue") CA with a server certificate of
/// its own. P-256 keys, into a temporary directory deleted after the tests.
library;

import 'dart:convert';
import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

/// One certificate and its key, as PEM files and bytes.
final class TestIdentity {
  TestIdentity(this.certificatePath, this.keyPath)
      : certificate = File(certificatePath).readAsBytesSync(),
        key = File(keyPath).readAsBytesSync();

  final String certificatePath;
  final String keyPath;
  final Uint8List certificate;
  final Uint8List key;

  /// The certificate's DER bytes (the PEM's base64).
  Uint8List get der {
    final text = String.fromCharCodes(certificate);
    final body = text
        .split('\n')
        .where((line) => line.isNotEmpty && !line.startsWith('-----'))
        .join();
    return Uint8List.fromList(base64.decode(body));
  }
}

/// The test PKI (see the library comment).
final class TestPki {
  TestPki._(this.directory, this.ca, this.server, this.client, this.rogueCa,
      this.rogueServer, this.expiredServer);

  final Directory directory;
  final TestIdentity ca;
  final TestIdentity server;
  final TestIdentity client;
  final TestIdentity rogueCa;

  /// A server certificate for localhost issued by [rogueCa].
  final TestIdentity rogueServer;

  /// A server certificate for localhost by [ca] that expired.
  final TestIdentity expiredServer;

  /// A server context with [server]'s certificate.
  TlsContext serverContext(
          {TlsClientAuth clientAuth = TlsClientAuth.none,
          List<String> alpnProtocols = const [],
          TlsVersions versions = TlsVersions.tls12AndTls13,
          TestIdentity? identity}) =>
      _closed(TlsContext.server(
          certificateChain: (identity ?? server).certificate,
          privateKey: (identity ?? server).key,
          trustedCertificates:
              clientAuth == TlsClientAuth.none ? null : ca.certificate,
          clientAuth: clientAuth,
          alpnProtocols: alpnProtocols,
          versions: versions));

  /// A client context trusting [ca] (or [trust]).
  TlsContext clientContext(
          {bool withCertificate = false,
          List<String> alpnProtocols = const [],
          TlsVersions versions = TlsVersions.tls12AndTls13,
          TestIdentity? trust}) =>
      _closed(TlsContext.client(
          trustedCertificates: (trust ?? ca).certificate,
          certificateChain: withCertificate ? client.certificate : null,
          privateKey: withCertificate ? client.key : null,
          alpnProtocols: alpnProtocols,
          versions: versions));

  /// A dart:io server context with [server]'s certificate.
  SecurityContext dartServerContext({TestIdentity? identity}) =>
      SecurityContext()
        ..useCertificateChain((identity ?? server).certificatePath)
        ..usePrivateKey((identity ?? server).keyPath);

  /// A dart:io client context trusting [ca] (with [client]'s certificate
  /// when [withCertificate]).
  SecurityContext dartClientContext({bool withCertificate = false}) {
    final context = SecurityContext()
      ..setTrustedCertificates(ca.certificatePath);
    if (withCertificate) {
      context
        ..useCertificateChain(client.certificatePath)
        ..usePrivateKey(client.keyPath);
    }
    return context;
  }

  static TlsContext _closed(TlsContext context) {
    addTearDown(context.close);
    return context;
  }

  /// Makes the PKI in a fresh temporary directory (deleted by
  /// [delete]).
  static Future<TestPki> create() async {
    final dir = await Directory.systemTemp.createTemp('iouring-tls-test-');
    String at(String name) => '${dir.path}/$name';
    Future<void> openssl(List<String> args) async {
      final result = await Process.run('openssl', args,
          workingDirectory: dir.path);
      if (result.exitCode != 0) {
        throw StateError('openssl ${args.join(' ')} failed '
            '(${result.exitCode}): ${result.stderr}');
      }
    }

    Future<TestIdentity> makeCa(String name, String subject) async {
      await openssl([
        'req', '-x509', '-new', '-newkey', 'ec', //
        '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-keyout', at('$name.key'), '-out', at('$name.pem'),
        '-days', '30', '-subj', subject,
        '-addext', 'basicConstraints=critical,CA:TRUE',
        '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      ]);
      return TestIdentity(at('$name.pem'), at('$name.key'));
    }

    var serial = 1000;
    Future<TestIdentity> issue(String name, TestIdentity ca, String subject,
        List<String> extensions,
        {String days = '30', bool expired = false}) async {
      await openssl([
        'req', '-new', '-newkey', 'ec', //
        '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-keyout', at('$name.key'), '-out', at('$name.csr'),
        '-subj', subject,
      ]);
      await File(at('$name.ext')).writeAsString('${extensions.join('\n')}\n');
      if (expired) {
        // `openssl ca` can backdate; `x509 -req` cannot. A tiny CA config.
        await File(at('$name.db')).writeAsString('');
        await File(at('$name.cnf')).writeAsString('''
[ca]
default_ca = test
[test]
database = ${at('$name.db')}
new_certs_dir = ${dir.path}
serial = ${at('$name.serial')}
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
''');
        await File(at('$name.serial')).writeAsString('${serial++}\n');
        await openssl([
          'ca', '-batch', '-config', at('$name.cnf'), //
          '-cert', ca.certificatePath, '-keyfile', ca.keyPath,
          '-in', at('$name.csr'), '-out', at('$name.pem'),
          '-startdate', '20200101000000Z', '-enddate', '20200201000000Z',
          '-extfile', at('$name.ext'), '-notext',
        ]);
      } else {
        await openssl([
          'x509', '-req', '-in', at('$name.csr'), //
          '-CA', ca.certificatePath, '-CAkey', ca.keyPath,
          '-set_serial', '${serial++}', '-days', days,
          '-out', at('$name.pem'), '-extfile', at('$name.ext'),
        ]);
      }
      return TestIdentity(at('$name.pem'), at('$name.key'));
    }

    const serverExtensions = [
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      'extendedKeyUsage=serverAuth',
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
    ];
    final ca = await makeCa('ca', '/O=iouring_transport tests/CN=Test CA');
    final server =
        await issue('server', ca, '/CN=localhost', serverExtensions);
    final client = await issue('client', ca, '/CN=test client', [
      'extendedKeyUsage=clientAuth',
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
    ]);
    final rogueCa = await makeCa('rogue-ca', '/CN=Rogue CA');
    final rogueServer =
        await issue('rogue-server', rogueCa, '/CN=localhost', serverExtensions);
    final expired = await issue(
        'expired-server', ca, '/CN=localhost', serverExtensions,
        expired: true);
    return TestPki._(dir, ca, server, client, rogueCa, rogueServer, expired);
  }

  /// Deletes the directory.
  Future<void> delete() => directory.delete(recursive: true);
}

/// The PKI for the tests of a file: made in setUpAll, deleted in
/// tearDownAll.
TestPki Function() setUpPki() {
  TestPki? pki;
  setUpAll(() async {
    pki = await TestPki.create();
  });
  tearDownAll(() => pki?.delete());
  return () => pki!;
}
