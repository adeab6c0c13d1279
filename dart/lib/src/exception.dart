/// The package's one exception hierarchy, and the helpers that build it from
/// native result codes.
library;

import 'dart:io' show IOException;

import 'ffi/bindings.dart';
import 'ffi/error_text.dart';

/// Linux errno values the Dart layer reacts to (identical on x86-64, AArch64
/// and RISC-V). Native results carry them negated.
abstract final class Errno {
  static const int enoent = 2;
  static const int eintr = 4;
  static const int eagain = 11;
  static const int ebusy = 16;
  static const int einval = 22;
  static const int epipe = 32;
  static const int enobufs = 105;
  static const int econnreset = 104;
  static const int etimedout = 110;
  static const int econnrefused = 111;
  static const int ecanceled = 125;
}

/// A transport operation failed.
///
/// [code] is the native result: a negative errno (`-111` is
/// `ECONNREFUSED`) or one of the library's own codes (`<= -5000`), or null
/// when the failure was detected in Dart. [nativeMessage] is the native
/// library's text for [code]. An [IOException], so `on IOException`
/// handlers written for dart:io catch it.
class TransportException implements IOException {
  TransportException(this.message,
      {this.operation, this.code, this.nativeMessage, this.path});

  /// What went wrong, in words.
  final String message;

  /// The operation that failed (`connect`, `recv`, `send`, ...), if known.
  final String? operation;

  /// The native result code, if the failure came from the native library.
  final int? code;

  /// The native library's text for [code] (`iot_error_message`).
  final String? nativeMessage;

  /// The file or socket path the operation was on, when it had one.
  final String? path;

  /// The positive errno when [code] is a negated errno, else null.
  int? get errno {
    final c = code;
    return c != null && c < 0 && c > -4096 ? -c : null;
  }

  String get _kind => 'TransportException';

  @override
  String toString() {
    final buffer = StringBuffer(_kind)..write(': ');
    if (operation != null) buffer.write('$operation');
    if (path != null) buffer.write(" '$path'");
    if (operation != null || path != null) buffer.write(': ');
    buffer.write(message);
    final c = code;
    final native = nativeMessage;
    if (native != null && !message.startsWith(native)) {
      buffer.write(' ($native');
      if (c != null) buffer.write(', code $c');
      buffer.write(')');
    } else if (c != null) {
      buffer.write(' (code $c)');
    }
    return buffer.toString();
  }
}

/// An operation ran out of the time it was given (`ETIMEDOUT` after a
/// timeout was requested).
final class TransportTimeoutException extends TransportException {
  TransportTimeoutException(super.message,
      {super.operation,
      super.code,
      super.nativeMessage,
      super.path,
      this.timeout});

  /// The timeout that expired, when known.
  final Duration? timeout;

  @override
  String get _kind => 'TransportTimeoutException';
}

/// The resource (worker, socket, listener) was closed before or while the
/// operation ran.
final class TransportClosedException extends TransportException {
  TransportClosedException(super.message,
      {super.operation, super.code, super.nativeMessage, super.path});

  @override
  String get _kind => 'TransportClosedException';
}

/// The operation was cancelled (`ECANCELED`) for another reason than a local
/// close.
final class TransportCancelledException extends TransportException {
  TransportCancelledException(super.message,
      {super.operation, super.code, super.nativeMessage, super.path});

  @override
  String get _kind => 'TransportCancelledException';
}

/// The target worker of a message is unknown, closed or stopped
/// (`IOT_E_WORKER_GONE`, code -5020).
final class WorkerGoneException extends TransportException {
  WorkerGoneException(super.message,
      {super.operation, super.code, super.nativeMessage, super.path});

  @override
  String get _kind => 'WorkerGoneException';
}

/// io_uring is unavailable on this system (old kernel,
/// `kernel.io_uring_disabled`, a seccomp filter in a container) or lacks an
/// operation the library needs. [nativeMessage] says what to check.
final class IoUringUnavailableException extends TransportException {
  IoUringUnavailableException(super.message,
      {super.operation, super.code, super.nativeMessage, super.path});

  @override
  String get _kind => 'IoUringUnavailableException';
}

/// The native library could not be found or loaded.
final class TransportLibraryException extends TransportException {
  TransportLibraryException(super.message, {this.triedPaths = const []});

  /// Every path that was tried, in order.
  final List<String> triedPaths;

  @override
  String get _kind => 'TransportLibraryException';
}

/// The native library's text for result [code].
String nativeErrorMessage(Bindings bindings, int code) =>
    bindings.errorText(code);

/// The exception for native result [code] (negative) of [operation].
///
/// [timeout] is the timeout the caller requested, if any: only then does
/// `-ETIMEDOUT` become a [TransportTimeoutException]. [closedLocally] says the
/// resource was closed on purpose, so `-ECANCELED` (and a stale handle) means
/// [TransportClosedException] rather than [TransportCancelledException].
/// [reason] says more than the code's text (a TLS session's failure, say).
TransportException transportError(Bindings bindings, int code, String operation,
    {Duration? timeout,
    bool closedLocally = false,
    String? path,
    String? reason}) {
  final text = nativeErrorMessage(bindings, code);
  if (code == -Errno.etimedout && timeout != null) {
    return TransportTimeoutException(
        'timed out after ${timeout.inMilliseconds} ms',
        operation: operation,
        code: code,
        nativeMessage: text,
        path: path,
        timeout: timeout);
  }
  if (closedLocally &&
      (code == -Errno.ecanceled || code == IOT_E_BAD_HANDLE)) {
    return TransportClosedException('closed',
        operation: operation, code: code, nativeMessage: text, path: path);
  }
  if (code == -Errno.ecanceled) {
    return TransportCancelledException('cancelled',
        operation: operation, code: code, nativeMessage: text, path: path);
  }
  if (code == IOT_E_WORKER_GONE) {
    return WorkerGoneException(text,
        operation: operation, code: code, nativeMessage: text, path: path);
  }
  if (code == IOT_E_UNSUPPORTED) {
    return IoUringUnavailableException(text,
        operation: operation, code: code, nativeMessage: text, path: path);
  }
  return TransportException(reason == null ? text : '$text: $reason',
      operation: operation, code: code, nativeMessage: text, path: path);
}

/// The exception for using [what] after it was closed.
TransportClosedException closedError(String operation, String what) =>
    TransportClosedException('$what is closed', operation: operation);
