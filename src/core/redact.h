/* Keeps secrets out of everything we print: passwords in connection strings, bearer tokens,
 * OAuth parameters and JSON members, private keys, JSON Web Tokens, signatures and keys of S3
 * and Azure. */
#ifndef M2D_CORE_REDACT_H
#define M2D_CORE_REDACT_H

#include <stddef.h>

/* Copies text into out (always NUL-terminated, truncated to outsz), replacing the password of
 * every "scheme://user:password@" it contains with "****". Handles several URIs in one text,
 * and passwords holding '@' or ':' (the last '@' before the host part ends the user info). Then
 * masks with "****": the rest of an "Authorization:" line, the token after "Bearer ", the values
 * of access_token=, refresh_token=, id_token=, assertion=, client_secret=, upload_id=, the
 * string values of the JSON members "access_token", "refresh_token", "id_token",
 * "private_key" and "client_secret", any JSON Web Token (eyJ....x.y), and the values of
 * X-Amz-Signature=, X-Amz-Credential=, X-Amz-Security-Token= (and its header), Signature=, an
 * Azure SAS's sig=, AccountKey= and SharedAccessSignature=. */
void m2d_redact(const char *text, char *out, size_t outsz);

#endif
