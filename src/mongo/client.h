/* Connections to MongoDB through libmongoc, and what the server says it is. */
#ifndef M2D_MONGO_CLIENT_H
#define M2D_MONGO_CLIENT_H

#include "core/error.h"

#include <mongoc/mongoc.h>
#include <stdbool.h>

/* Calls mongoc_init once per process and mongoc_cleanup at exit. */
void m2d_mongo_global_init(void);

/* Opens a client for uri. Unless the URI sets them, server selection and connection time out
 * after 5 s, so an unreachable server fails fast. Returns NULL on a malformed URI (the message
 * never contains the password). Caller destroys with mongoc_client_destroy. */
mongoc_client_t *m2d_mongo_client_new(const char *uri, m2d_error_t *err);

/* A pool of clients for many threads of one process (run: a sync loop per collection), with
 * the defaults above; max_size (> 0) caps its connections unless the URI sets maxPoolSize.
 * Caller destroys with mongoc_client_pool_destroy after every client is back. */
mongoc_client_pool_t *m2d_mongo_pool_new(const char *uri, int max_size, m2d_error_t *err);

/* A client from pool (waits while all are out), or without a pool a new one for uri; and back
 * (without a pool: destroyed; NULL is ignored). */
mongoc_client_t *m2d_mongo_client_get(mongoc_client_pool_t *pool, const char *uri, m2d_error_t *err);
void m2d_mongo_client_put(mongoc_client_pool_t *pool, mongoc_client_t *client);

typedef struct {
  char address[256];     /* host:port of the server that answered */
  char version[64];      /* buildInfo.version, or "unknown" */
  int max_wire_version;
  char topology[32];     /* standalone | replica set | sharded */
  char set_name[128];    /* replica set name when there is one */
  bool change_streams;   /* a collection change stream could be opened */
  char change_streams_detail[512];
} m2d_server_info_t;

/* Connects, runs isMaster and buildInfo, and tries to open a change stream on db.probe_coll.
 * Fails only when the server cannot be reached or refuses the commands. */
bool m2d_mongo_server_info(mongoc_client_t *client, const char *db, m2d_server_info_t *info,
                           m2d_error_t *err);

/* Builds an m2d error from a libmongoc error, with a hint at what to do. */
bool m2d_mongo_error(m2d_error_t *err, const bson_error_t *e, const char *what);

#endif
