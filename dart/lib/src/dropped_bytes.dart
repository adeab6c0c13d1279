/// [DroppedBytes]: gives back the native memory of releasable bytes the
/// program dropped without releasing them.
library;

import 'dart:typed_data';

/// Gives a native buffer back, once.
abstract interface class GiveBack {
  void release();
}

/// Watches the views of releasable bytes not released yet, and gives back
/// the memory of those that became unreachable: one weak reference per view
/// (cheap to make and to forget), looked at after each garbage collection,
/// which a finalizer on a throwaway sentinel object reports.
///
/// Not a [Finalizer] per view: attaching one with a detach key and detaching
/// it again keeps two hash sets and allocates a set per key, about 15% of the
/// CPU of a payload echo server (`tool/bench_dart.sh`, 500 and 2,000
/// connections). Like a finalizer, it gives memory back only once a
/// collection found the view unreachable (and every view made from it).
final class DroppedBytes {
  final List<WeakReference<Uint8List>?> _views = [];
  final List<GiveBack?> _giveBacks = [];
  final List<int> _freeSlots = [];
  bool _sentinelOut = false;

  static final Finalizer<DroppedBytes> _afterCollection =
      Finalizer<DroppedBytes>((watcher) => watcher._sweep());

  /// Watches [view]: once it is unreachable, [giveBack] runs. Returns the
  /// slot to [forget] it by.
  int watch(Uint8List view, GiveBack giveBack) {
    final reference = WeakReference<Uint8List>(view);
    final int slot;
    if (_freeSlots.isNotEmpty) {
      slot = _freeSlots.removeLast();
      _views[slot] = reference;
      _giveBacks[slot] = giveBack;
    } else {
      slot = _views.length;
      _views.add(reference);
      _giveBacks.add(giveBack);
    }
    if (!_sentinelOut) _armSentinel();
    return slot;
  }

  /// Stops watching [slot]: its memory was given back some other way.
  void forget(int slot) {
    _views[slot] = null;
    _giveBacks[slot] = null;
    _freeSlots.add(slot);
  }

  /// A sentinel nothing references: the next collection finds it and its
  /// finalizer calls [_sweep].
  void _armSentinel() {
    _sentinelOut = true;
    _afterCollection.attach(Object(), this);
  }

  /// After a collection: gives back what it found unreachable, and watches
  /// for the next collection while anything is still watched.
  void _sweep() {
    _sentinelOut = false;
    var watching = false;
    for (var slot = 0; slot < _views.length; slot++) {
      final view = _views[slot];
      if (view == null) continue;
      if (view.target != null) {
        watching = true;
        continue;
      }
      final giveBack = _giveBacks[slot]!;
      forget(slot);
      giveBack.release();
    }
    if (watching) _armSentinel();
  }
}
