/* libFuzzer: the thrift compact decoder through FileMetaData and PageHeader, and the schema
 * built from the decoded elements. */
#include "parquet/metadata_read.h"
#include "parquet/schema.h"

#include <stdint.h>
#include <stddef.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  m2d_error_t err;
  pq_footer_t *f = pq_footer_decode(data, size, &err);
  if (f) {
    const pq_file_metadata_t *md = pq_footer_metadata(f);
    pq_schema_t s;
    if (pq_schema_from_elements(md->schema, md->num_schema, &s, &err)) pq_schema_free(&s);
    pq_footer_free(f);
  }
  pq_page_header_t ph;
  size_t used;
  (void)pq_page_header_decode(data, size, &ph, &used, &err);
  return 0;
}
