/* Keeps secrets out of everything we print: passwords in connection strings, SAS signatures,
 * account keys and Authorization headers. */
#ifndef M2D_CORE_REDACT_H
#define M2D_CORE_REDACT_H

#include <stddef.h>

/* Copies text into out (always NUL-terminated, truncated to outsz), replacing the password of
 * every "scheme://user:password@" it contains with "****". Handles several URIs in one text,
 * and passwords holding '@' or ':' (the last '@' before the host part ends the user info).
 * Also masks the value of every "sig=" (a SAS token's signature), "AccountKey=" and
 * "SharedAccessSignature=" (Azure connection strings), and all that follows "Authorization:" on
 * its line. */
void m2d_redact(const char *text, char *out, size_t outsz);

#endif
