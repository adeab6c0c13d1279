/// Binding IP sockets (TCP listeners, UDP sockets) to a host and port.
library;

import 'dart:ffi';
import 'dart:io' show InternetAddress;

import 'package:ffi/ffi.dart';

import 'address.dart';
import 'exception.dart';
import 'ffi/bindings.dart';
import 'ffi/socket_handles.dart';
import 'worker.dart';
import 'worker_core.dart';

/// Binds an IP socket (TCP listener, UDP socket) to [host] (a `String` or an
/// [InternetAddress]; a name is looked up and its first address used) and
/// [port]: [bind] makes the native call with the numeric address (the new
/// socket's id is then in the scratch's `u64`). Returns the socket, the address and the
/// bound port (the chosen one for port 0).
Future<({WorkerCore core, SocketHandle socket, InternetAddress address, int port})>
    bindIp(Object host, int port, Worker? worker,
        int Function(WorkerCore core, Pointer<Utf8> ip) bind) async {
  RangeError.checkValueInInterval(port, 0, 65535, 'port');
  final core = workerCore(worker ?? Worker.current);
  final addresses = await resolveHost(host, 'bind');
  if (core.isClosed) throw closedError('bind', 'worker');
  final ip = addresses.first;
  final rc = bind(core, core.scratchText(ip.address));
  if (rc < 0) throw core.error(rc, 'bind');
  final socket = SocketHandle(core.handle, core.scratchFor('socket').u64.value);
  var bound = port;
  try {
    bound = core.socketAddress(socket, IOT_ADDRESS_LOCAL, 'bind').port;
  } on TransportException {
    // The socket is bound; only its address could not be read.
  }
  return (core: core, socket: socket, address: ip, port: bound);
}
