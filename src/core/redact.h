/* Keeps secrets out of everything we print: passwords in connection strings, signatures, keys
 * and tokens. */
#ifndef M2D_CORE_REDACT_H
#define M2D_CORE_REDACT_H

#include <stddef.h>

/* Copies text into out (always NUL-terminated, truncated to outsz), replacing the password of
 * every "scheme://user:password@" it contains with "****". Handles several URIs in one text,
 * and passwords holding '@' or ':' (the last '@' before the host part ends the user info).
 * The values of secret parameters and headers (X-Amz-Signature=, X-Amz-Credential=,
 * X-Amz-Security-Token=, sig= of an Azure SAS, AccountKey=, Authorization:, a JSON
 * "private_key", OAuth access tokens) become "****" too. */
void m2d_redact(const char *text, char *out, size_t outsz);

#endif
