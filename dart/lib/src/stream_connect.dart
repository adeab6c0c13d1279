/// Connecting stream sockets (TCP or Unix): one connect as a future.
library;

import 'exception.dart';
import 'ffi/socket_handles.dart';
import 'single_op.dart';
import 'stream_connection.dart';
import 'worker_core.dart';

/// Connects with [submit] (the native connect call, given the operation's
/// tag; it returns the call's result) and wraps the connected socket with
/// [adopt]. A connect that fails leaves no socket behind; its error names
/// [path] (a Unix socket's).
Future<T> connectStream<T extends StreamConnection>(
    WorkerCore core,
    Duration? timeout,
    int Function(int tag) submit,
    T Function(SocketHandle socket) adopt,
    {String? path, Cancellation? cancellation}) {
  final op = SingleOp<T>(core, 'connect', (_, handle) {
    if (handle == 0) throw core.error(-Errno.ecanceled, 'connect', path: path);
    return adopt(SocketHandle(core.handle, handle));
  }, timeout: timeout, path: path);
  return op.start(submit, cancellation: cancellation);
}
