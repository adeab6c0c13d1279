/// [Undelivered]: the events a `StreamController` holds for its listener, so
/// that a cancel can give back what they own.
library;

import 'dart:collection';

/// The events added to a `StreamController` that its listener has not got
/// yet, oldest first. A controller drops them at a cancel; events that own a
/// socket or native memory must be given back then, not when a garbage
/// collection finds them.
final class Undelivered<T> {
  final ListQueue<T> _events = ListQueue<T>();

  /// [event] goes to the controller now.
  void add(T event) => _events.add(event);

  /// The controller's [stream], counting each event delivered as the
  /// listener gets it (the controller delivers in order).
  Stream<T> delivering(Stream<T> stream) => stream.map(_delivered);

  T _delivered(T event) {
    _events.removeFirst();
    return event;
  }

  /// Hands every event the listener never got to [dispose], oldest first.
  void disposeAll(void Function(T event) dispose) {
    while (_events.isNotEmpty) {
      dispose(_events.removeFirst());
    }
  }
}
