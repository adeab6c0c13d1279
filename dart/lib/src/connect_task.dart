/// [ConnectTask]: a connection attempt that can be cancelled, as dart:io's
/// `ConnectionTask` (which cannot be made outside dart:io).
library;

import 'single_op.dart';

/// A connection being established ([socket]) that [cancel] can abandon.
final class ConnectTask<S> {
  /// For the transport's own connects.
  ConnectTask.internal(this.socket, this._cancellation);

  /// Completes with the connection, or fails; after [cancel], fails with a
  /// cancellation error unless the connection was already established.
  final Future<S> socket;

  final Cancellation _cancellation;

  /// Cancels the attempt: the connect in flight is cancelled natively and no
  /// further address is tried. Does nothing once [socket] completed.
  void cancel() => _cancellation.cancel();
}
