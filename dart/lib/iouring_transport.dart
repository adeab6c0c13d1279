/// io_uring-backed TCP, UDP, Unix stream and datagram sockets and files for
/// Dart on Linux: listeners, connections, datagrams, file reads and writes,
/// and zero-copy payloads as ordinary Futures and Streams, driven by one
/// native worker per isolate.
///
/// ```dart
/// import 'package:iouring_transport/iouring_transport.dart';
///
/// Future<void> main() async {
///   final server = await TcpListener.bind('127.0.0.1', 0);
///   server.listen((connection) {
///     connection.payloads.listen(connection.writePayload,
///         onDone: connection.close);
///   });
///   final client = await TcpConnection.connect('127.0.0.1', server.port);
///   await client.write([1, 2, 3]);
///   print(await client.first);
///   await client.close();
///   await server.close();
///   await Worker.current.close();
/// }
/// ```
library;

export 'src/buffers.dart' show Payload, ReleasableBytes;
export 'src/connect_task.dart' show ConnectTask;
export 'src/connection_listener.dart' show ConnectionListener;
export 'src/exception.dart'
    show
        IoUringUnavailableException,
        TransportCancelledException,
        TransportClosedException,
        TransportException,
        TransportLibraryException,
        TransportTimeoutException,
        WorkerGoneException;
export 'src/ffi/library.dart'
    show
        libraryCandidates,
        libraryEnvironmentVariable,
        libraryFileName,
        loadTransportLibrary,
        loadedLibraryPath;
export 'src/file.dart' show IoFile, IoFileMode, defaultFilePermissions;
export 'src/file_info.dart' show FileInfo;
export 'src/handoff.dart'
    show HandOffException, TcpConnectionHandOff, WorkerHandOffs;
export 'src/io/secure_server_socket.dart' show IoUringSecureServerSocket;
export 'src/io/secure_socket.dart'
    show IoUringHandshakeException, IoUringSecureSocket;
export 'src/io/server_socket.dart' show IoUringServerSocket;
export 'src/io/socket.dart' show IoUringSocket;
export 'src/isolates.dart' show WorkerContext, WorkerPool;
export 'src/messages.dart' show BytesMessage, WorkerMessage;
export 'src/stream_connection.dart' show StreamConnection;
export 'src/tcp.dart' show TcpConnection, TcpListener;
export 'src/tls/secure_listener.dart' show SecureListener;
export 'src/tls/tls_context.dart' show TlsClientAuth, TlsContext, TlsVersions;
export 'src/tls/tls_exception.dart'
    show TlsConfigException, TlsFailure, TlsHandshakeException;
export 'src/tls/tls_session.dart' show TlsConnectionInfo, TlsSession;
export 'src/transport.dart' show Transport;
export 'src/udp.dart' show UdpDatagram, UdpSocket;
export 'src/unix.dart'
    show UnixConnection, UnixDatagram, UnixDatagramSocket, UnixListener;
export 'src/worker.dart' show Worker;
export 'src/worker_config.dart' show WorkerConfig;
export 'src/worker_stats.dart' show WorkerStats;
