/* mongo2delta check: is this MongoDB server usable, and for what. */
#include "cli/commands.h"
#include "core/log.h"
#include "mongo/client.h"

#include <stdio.h>

static const m2d_opt_spec_t opts[] = {
    {"uri", "URI", "MongoDB connection string", NULL, true},
    {"db", "DB", "database in which to try opening a change stream", "test", false},
    {"require-change-streams", NULL, "fail (exit 1) when change streams cannot be opened", NULL, false},
    M2D_OPT_END,
};

static int run(const m2d_command_t *cmd, m2d_args_t *args) {
  (void)cmd;
  m2d_error_t err = {0};
  m2d_server_info_t info;
  int status = 1;
  mongoc_client_t *client = m2d_mongo_client_new(m2d_args_get(args, "uri"), &err);
  if (!client || !m2d_mongo_server_info(client, m2d_args_get(args, "db"), &info, &err)) {
    status = m2d_cli_fail(&err);
    goto done;
  }
  printf("server:          %s\n", info.address);
  printf("version:         %s\n", info.version);
  printf("wire version:    %d\n", info.max_wire_version);
  printf("topology:        %s%s%s\n", info.topology, info.set_name[0] ? " " : "", info.set_name);
  printf("change streams:  %s (%s)\n", info.change_streams ? "yes" : "no", info.change_streams_detail);
  if (!info.change_streams && m2d_args_flag(args, "require-change-streams")) {
    m2d_error("change streams cannot be opened on this server: %s", info.change_streams_detail);
    goto done;
  }
  status = 0;
done:
  mongoc_client_destroy(client);
  return status;
}

const m2d_command_t m2d_cmd_check = {
    .name = "check",
    .summary = "connect to MongoDB and report what the server is and whether it can be synced",
    .description = "Connects through the MongoDB C driver and reports the server's address, version,\n"
                   "wire version, topology (standalone, replica set, sharded) and whether change\n"
                   "streams can be opened (needed by 'sync'). Exit status 0 when the server is usable.\n"
                   "Passwords in the URI are never printed.",
    .example = "mongo2delta check --uri 'mongodb://user:secret@127.0.0.1:27017/?authSource=admin'",
    .opts = opts,
    .run = run,
};
