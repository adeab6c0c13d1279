/// The shelf application of `example/shelf_server.dart` (also served by the
/// tests): `GET /hello/<name>` answers `hello <name>`, `POST /echo` answers
/// with the request's body; anything else is 404.
library;

import 'package:shelf/shelf.dart';
import 'package:shelf_router/shelf_router.dart';

/// The application's routes.
Router shelfApp() => Router()
  ..get('/hello/<name>',
      (Request request, String name) => Response.ok('hello $name'))
  ..post('/echo', (Request request) => Response.ok(request.read()));
