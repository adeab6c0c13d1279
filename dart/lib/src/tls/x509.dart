/// A DER certificate as a dart:io [X509Certificate]: the subject, issuer and
/// validity read from its DER, its PEM and its SHA-1, as dart:io reports
/// them for the certificates it sees.
library;

import 'dart:convert';
import 'dart:io' show X509Certificate;
import 'dart:typed_data';

/// [der] (a certificate's DER bytes) as an [X509Certificate]. Throws a
/// [FormatException] when it is not a certificate.
X509Certificate certificateFromDer(Uint8List der) => _DerCertificate(der);

final class _DerCertificate implements X509Certificate {
  _DerCertificate(Uint8List der) : der = Uint8List.fromList(der) {
    final certificate = _Der(this.der).element(0x30);
    final tbs = _Der(certificate).element(0x30);
    final fields = _Der(tbs);
    if (fields.peekTag == 0xa0) fields.element(0xa0); // version
    fields.element(0x02); // serial number
    fields.element(0x30); // signature algorithm
    issuer = _name(fields.element(0x30));
    final validity = _Der(fields.element(0x30));
    startValidity = validity.time();
    endValidity = validity.time();
    subject = _name(fields.element(0x30));
  }

  @override
  final Uint8List der;

  @override
  late final String subject;

  @override
  late final String issuer;

  @override
  late final DateTime startValidity;

  @override
  late final DateTime endValidity;

  @override
  String get pem {
    final body = base64.encode(der);
    final out = StringBuffer('-----BEGIN CERTIFICATE-----\n');
    for (var i = 0; i < body.length; i += 64) {
      final end = i + 64 > body.length ? body.length : i + 64;
      out.writeln(body.substring(i, end));
    }
    out.writeln('-----END CERTIFICATE-----');
    return out.toString();
  }

  @override
  Uint8List get sha1 => _sha1(der);

  @override
  String toString() => 'X509Certificate($subject)';
}

/// A Name as OpenSSL's one-line form, as dart:io's: `/O=Org/CN=name`.
String _name(Uint8List name) {
  final out = StringBuffer();
  final rdns = _Der(name);
  while (!rdns.isDone) {
    final attributes = _Der(rdns.element(0x31));
    while (!attributes.isDone) {
      final pair = _Der(attributes.element(0x30));
      final oid = _oid(pair.element(0x06));
      final (tag, value) = pair.any();
      out
        ..write('/')
        ..write(_attributeNames[oid] ?? oid)
        ..write('=')
        ..write(_string(tag, value));
    }
  }
  return out.toString();
}

const Map<String, String> _attributeNames = {
  '2.5.4.3': 'CN',
  '2.5.4.4': 'SN',
  '2.5.4.5': 'serialNumber',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.9': 'street',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.12': 'title',
  '2.5.4.42': 'GN',
  '1.2.840.113549.1.9.1': 'emailAddress',
  '0.9.2342.19200300.100.1.1': 'UID',
  '0.9.2342.19200300.100.1.25': 'DC',
};

String _oid(Uint8List bytes) {
  if (bytes.isEmpty) return '';
  final parts = <int>[];
  var value = 0;
  for (final byte in bytes) {
    value = (value << 7) | (byte & 0x7f);
    if (byte & 0x80 == 0) {
      parts.add(value);
      value = 0;
    }
  }
  final first = parts.first;
  final head = first < 80 ? [first ~/ 40, first % 40] : [2, first - 80];
  return [...head, ...parts.skip(1)].join('.');
}

String _string(int tag, Uint8List value) {
  switch (tag) {
    case 0x0c: // UTF8String
      return utf8.decode(value, allowMalformed: true);
    case 0x1e: // BMPString
      final units = <int>[
        for (var i = 0; i + 1 < value.length; i += 2)
          (value[i] << 8) | value[i + 1]
      ];
      return String.fromCharCodes(units);
    case 0x1c: // UniversalString
      final runes = <int>[
        for (var i = 0; i + 3 < value.length; i += 4)
          (value[i] << 24) |
              (value[i + 1] << 16) |
              (value[i + 2] << 8) |
              value[i + 3]
      ];
      return String.fromCharCodes(runes);
    default: // PrintableString, IA5String, T61String, ...
      return latin1.decode(value);
  }
}

/// Reads DER elements one after another.
final class _Der {
  _Der(this._bytes);

  final Uint8List _bytes;
  int _at = 0;

  bool get isDone => _at >= _bytes.length;

  int get peekTag {
    if (isDone) throw const FormatException('certificate: truncated DER');
    return _bytes[_at];
  }

  /// The next element, which must have [tag]: its contents.
  Uint8List element(int tag) {
    final (found, value) = any();
    if (found != tag) {
      throw FormatException('certificate: expected DER tag '
          '0x${tag.toRadixString(16)}, found 0x${found.toRadixString(16)}');
    }
    return value;
  }

  /// The next element: its tag and contents.
  (int, Uint8List) any() {
    final tag = peekTag;
    _at++;
    if (isDone) throw const FormatException('certificate: truncated DER');
    var length = _bytes[_at++];
    if (length & 0x80 != 0) {
      final count = length & 0x7f;
      if (count == 0 || count > 4 || _at + count > _bytes.length) {
        throw const FormatException('certificate: bad DER length');
      }
      length = 0;
      for (var i = 0; i < count; i++) {
        length = (length << 8) | _bytes[_at++];
      }
    }
    if (_at + length > _bytes.length) {
      throw const FormatException('certificate: truncated DER');
    }
    final value = Uint8List.sublistView(_bytes, _at, _at + length);
    _at += length;
    return (tag, value);
  }

  /// The next element as a UTCTime or GeneralizedTime (UTC).
  DateTime time() {
    final (tag, value) = any();
    final text = latin1.decode(value);
    final String full;
    if (tag == 0x17) {
      final year = int.parse(text.substring(0, 2));
      full = '${year < 50 ? 20 : 19}$text';
    } else if (tag == 0x18) {
      full = text;
    } else {
      throw const FormatException('certificate: bad validity time');
    }
    int at(int from, int length) =>
        int.parse(full.substring(from, from + length));
    return DateTime.utc(
        at(0, 4), at(4, 2), at(6, 2), at(8, 2), at(10, 2), at(12, 2));
  }
}

/// SHA-1 of [data] (dart:io reports a certificate's fingerprint so).
Uint8List _sha1(Uint8List data) {
  final length = data.length;
  final padded = Uint8List(((length + 8) ~/ 64 + 1) * 64)
    ..setRange(0, length, data);
  padded[length] = 0x80;
  final bits = ByteData.sublistView(padded);
  final bitLength = length * 8;
  bits.setUint32(padded.length - 8, (bitLength ~/ 0x100000000) & 0xffffffff);
  bits.setUint32(padded.length - 4, bitLength & 0xffffffff);
  var h0 = 0x67452301, h1 = 0xefcdab89, h2 = 0x98badcfe;
  var h3 = 0x10325476, h4 = 0xc3d2e1f0;
  final w = List<int>.filled(80, 0);
  int rotl(int x, int n) => ((x << n) | (x >> (32 - n))) & 0xffffffff;
  for (var block = 0; block < padded.length; block += 64) {
    for (var i = 0; i < 16; i++) {
      w[i] = bits.getUint32(block + i * 4);
    }
    for (var i = 16; i < 80; i++) {
      w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    }
    var a = h0, b = h1, c = h2, d = h3, e = h4;
    for (var i = 0; i < 80; i++) {
      final int f, k;
      if (i < 20) {
        f = (b & c) | ((~b & 0xffffffff) & d);
        k = 0x5a827999;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ed9eba1;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8f1bbcdc;
      } else {
        f = b ^ c ^ d;
        k = 0xca62c1d6;
      }
      final t = (rotl(a, 5) + f + e + k + w[i]) & 0xffffffff;
      e = d;
      d = c;
      c = rotl(b, 30);
      b = a;
      a = t;
    }
    h0 = (h0 + a) & 0xffffffff;
    h1 = (h1 + b) & 0xffffffff;
    h2 = (h2 + c) & 0xffffffff;
    h3 = (h3 + d) & 0xffffffff;
    h4 = (h4 + e) & 0xffffffff;
  }
  final out = ByteData(20)
    ..setUint32(0, h0)
    ..setUint32(4, h1)
    ..setUint32(8, h2)
    ..setUint32(12, h3)
    ..setUint32(16, h4);
  return out.buffer.asUint8List();
}
