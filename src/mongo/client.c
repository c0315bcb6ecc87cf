#include "mongo/client.h"

#include "core/log.h"
#include "core/redact.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* The driver's own messages go through our logger, so they are formatted, filtered by
 * --quiet/--verbose and redacted like ours. */
static void driver_log(mongoc_log_level_t level, const char *domain, const char *message, void *ud) {
  (void)ud;
  m2d_log_level_t ours = level <= MONGOC_LOG_LEVEL_WARNING ? M2D_LOG_WARN : M2D_LOG_DEBUG;
  if (level >= MONGOC_LOG_LEVEL_TRACE) return;
  m2d_log(ours, "mongoc %s: %s", domain, message);
}

static void do_init(void) {
  mongoc_log_set_handler(driver_log, NULL);
  mongoc_init();
  atexit(mongoc_cleanup);
}

void m2d_mongo_global_init(void) { pthread_once(&g_once, do_init); }

bool m2d_mongo_error(m2d_error_t *err, const bson_error_t *e, const char *what) {
  char msg[sizeof e->message + 8];
  m2d_redact(e->message, msg, sizeof msg);
  const char *hint = "";
  if (e->domain == MONGOC_ERROR_SERVER_SELECTION)
    hint = "; check that the server is running and that the URI's host and port are right";
  else if (e->domain == MONGOC_ERROR_CLIENT && e->code == MONGOC_ERROR_CLIENT_AUTHENTICATE)
    hint = "; check the user name, password and authSource in the URI";
  m2d_error_set(err, M2D_ERR_MONGO, (int)e->code, "%s: %s%s", what, msg, hint);
  if (err)
    err->retriable = e->domain == MONGOC_ERROR_SERVER_SELECTION || e->domain == MONGOC_ERROR_STREAM;
  return false;
}

/* The URI with our defaults (fail fast, our app name), or NULL with a usage error. */
static mongoc_uri_t *parse_uri(const char *uri_string, m2d_error_t *err) {
  m2d_mongo_global_init();
  bson_error_t e;
  mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_string, &e);
  if (!uri) {
    char safe[1024];
    m2d_redact(uri_string, safe, sizeof safe);
    m2d_error_set(err, M2D_ERR_USAGE, 0,
                  "invalid MongoDB URI '%s': %s; expected mongodb://[user:password@]host[:port]/",
                  safe, e.message);
    return NULL;
  }
  if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000);
  if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 5000);
  if (!mongoc_uri_get_option_as_utf8(uri, MONGOC_URI_APPNAME, NULL))
    mongoc_uri_set_appname(uri, "mongo2delta");
  return uri;
}

mongoc_client_t *m2d_mongo_client_new(const char *uri_string, m2d_error_t *err) {
  mongoc_uri_t *uri = parse_uri(uri_string, err);
  if (!uri) return NULL;
  bson_error_t e;
  mongoc_client_t *client = mongoc_client_new_from_uri_with_error(uri, &e);
  mongoc_uri_destroy(uri);
  if (!client) {
    m2d_mongo_error(err, &e, "cannot create a MongoDB client");
    return NULL;
  }
  mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
  return client;
}

mongoc_client_pool_t *m2d_mongo_pool_new(const char *uri_string, int max_size, m2d_error_t *err) {
  mongoc_uri_t *uri = parse_uri(uri_string, err);
  if (!uri) return NULL;
  if (max_size > 0 && !mongoc_uri_has_option(uri, MONGOC_URI_MAXPOOLSIZE))
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_MAXPOOLSIZE, max_size);
  bson_error_t e;
  mongoc_client_pool_t *pool = mongoc_client_pool_new_with_error(uri, &e);
  mongoc_uri_destroy(uri);
  if (!pool) {
    m2d_mongo_error(err, &e, "cannot create a MongoDB connection pool");
    return NULL;
  }
  mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
  return pool;
}

mongoc_client_t *m2d_mongo_client_get(mongoc_client_pool_t *pool, const char *uri, m2d_error_t *err) {
  return pool ? mongoc_client_pool_pop(pool) : m2d_mongo_client_new(uri, err);
}

void m2d_mongo_client_put(mongoc_client_pool_t *pool, mongoc_client_t *client) {
  if (!client) return;
  if (pool) mongoc_client_pool_push(pool, client);
  else mongoc_client_destroy(client);
}

static void copy_str(char *dst, size_t n, const bson_t *doc, const char *key) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
    bson_strncpy(dst, bson_iter_utf8(&it, NULL), n);
}

static void probe_change_stream(mongoc_client_t *client, const char *db, m2d_server_info_t *info) {
  mongoc_collection_t *coll = mongoc_client_get_collection(client, db, "mongo2delta_probe");
  bson_t pipeline = BSON_INITIALIZER;
  bson_t opts = BSON_INITIALIZER;
  BSON_APPEND_INT64(&opts, "maxAwaitTimeMS", 100);
  mongoc_change_stream_t *cs = mongoc_collection_watch(coll, &pipeline, &opts);
  const bson_t *doc;
  bson_error_t e;
  const bson_t *reply = NULL;
  (void)mongoc_change_stream_next(cs, &doc); /* forces the aggregate and a getMore */
  if (mongoc_change_stream_error_document(cs, &e, &reply)) {
    info->change_streams = false;
    char msg[sizeof e.message];
    m2d_redact(e.message, msg, sizeof msg);
    snprintf(info->change_streams_detail, sizeof info->change_streams_detail, "%s%s", msg,
             strcmp(info->topology, "standalone") == 0
                 ? " (a standalone mongod has no change streams: run it as a replica set)"
                 : "");
  } else {
    info->change_streams = true;
    snprintf(info->change_streams_detail, sizeof info->change_streams_detail, "opened on %s.%s",
             db, "mongo2delta_probe");
  }
  mongoc_change_stream_destroy(cs);
  bson_destroy(&opts);
  bson_destroy(&pipeline);
  mongoc_collection_destroy(coll);
}

bool m2d_mongo_server_info(mongoc_client_t *client, const char *db, m2d_server_info_t *info,
                           m2d_error_t *err) {
  memset(info, 0, sizeof *info);
  strcpy(info->version, "unknown");
  bool ok = false;
  bson_error_t e;
  bson_t hello_reply = BSON_INITIALIZER, build_reply = BSON_INITIALIZER;
  bson_t *cmd = BCON_NEW("isMaster", BCON_INT32(1));
  mongoc_server_description_t *sd = NULL;

  if (!mongoc_client_command_simple(client, "admin", cmd, NULL, &hello_reply, &e)) {
    m2d_mongo_error(err, &e, "cannot reach the MongoDB server");
    goto done;
  }
  bson_iter_t it;
  if (bson_iter_init_find(&it, &hello_reply, "maxWireVersion"))
    info->max_wire_version = (int)bson_iter_as_int64(&it);
  copy_str(info->set_name, sizeof info->set_name, &hello_reply, "setName");
  char msg[32] = "";
  copy_str(msg, sizeof msg, &hello_reply, "msg");
  strcpy(info->topology, info->set_name[0] ? "replica set" : strcmp(msg, "isdbgrid") == 0 ? "sharded" : "standalone");

  bson_destroy(cmd);
  cmd = BCON_NEW("buildInfo", BCON_INT32(1));
  if (mongoc_client_command_simple(client, "admin", cmd, NULL, &build_reply, &e)) {
    copy_str(info->version, sizeof info->version, &build_reply, "version");
  }

  sd = mongoc_client_select_server(client, false, NULL, &e);
  if (sd) bson_strncpy(info->address, mongoc_server_description_host(sd)->host_and_port, sizeof info->address);

  probe_change_stream(client, db, info);
  ok = true;
done:
  mongoc_server_description_destroy(sd);
  bson_destroy(cmd);
  bson_destroy(&hello_reply);
  bson_destroy(&build_reply);
  return ok;
}
