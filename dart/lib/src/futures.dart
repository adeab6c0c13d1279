/// Futures whose errors count as handled: a caller that drops one gets no
/// uncaught error, a caller that awaits it still sees the error.
library;

import 'dart:async';

/// Returns [future] after marking its error as handled: a caller that drops
/// the future gets no uncaught error, a caller that awaits it still sees the
/// error.
Future<T> handledFuture<T>(Future<T> future) {
  unawaited(future.then<void>((_) {}, onError: (Object _, StackTrace __) {}));
  return future;
}

/// A failed future whose error counts as handled (see [handledFuture]).
Future<void> failedFuture(Object error) {
  final failed = Future<void>.error(error);
  return handledFuture(failed);
}
