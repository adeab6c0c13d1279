/// dart:io HttpClient helpers of the HTTP tests: a client closed with the
/// test, and one request with its whole response.
library;

import 'dart:async';
import 'dart:io';
import 'dart:typed_data';

import 'package:test/test.dart';

import 'inbox.dart';

/// A dart:io HttpClient, closed (with its connections) when the test ends.
HttpClient testHttpClient() {
  final client = HttpClient();
  addTearDown(() => client.close(force: true));
  return client;
}

/// Everything [stream] carries, at most [testWait] away.
Future<Uint8List> readAll(Stream<List<int>> stream) async {
  final builder = BytesBuilder(copy: false);
  await stream.forEach(builder.add).bounded;
  return builder.takeBytes();
}

/// Sends [method] to [uri] with [body] (if any: with a content length, or
/// [chunked] in flushed pieces of 1000 bytes, so several chunks go on the
/// wire) and returns the response with its whole body.
Future<(HttpClientResponse, Uint8List)> fetch(
    HttpClient client, String method, Uri uri,
    {List<int>? body, bool chunked = false}) async {
  final request = await client.openUrl(method, uri).bounded;
  if (body != null) {
    if (chunked) {
      request.headers.chunkedTransferEncoding = true;
      const piece = 1000;
      for (var start = 0; start < body.length; start += piece) {
        final end = start + piece > body.length ? body.length : start + piece;
        request.add(body.sublist(start, end));
        await request.flush().bounded;
      }
    } else {
      request.contentLength = body.length;
      request.add(body);
    }
  }
  final response = await request.close().bounded;
  return (response, await readAll(response));
}
