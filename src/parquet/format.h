/* The Parquet file format's metadata, as C structs mirroring parquet.thrift (apache/parquet-
 * format). Field comments give the thrift field id. Encoding these to the thrift compact
 * protocol is in metadata_write.c, decoding in metadata_read.c.
 * Optional fields carry a has_<name> flag. Arrays are pointer + count. */
#ifndef M2D_PARQUET_FORMAT_H
#define M2D_PARQUET_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  PQ_BOOLEAN = 0, PQ_INT32 = 1, PQ_INT64 = 2, PQ_INT96 = 3,
  PQ_FLOAT = 4, PQ_DOUBLE = 5, PQ_BYTE_ARRAY = 6, PQ_FIXED_LEN_BYTE_ARRAY = 7
} pq_type_t;

typedef enum {
  PQ_CT_UTF8 = 0, PQ_CT_MAP = 1, PQ_CT_MAP_KEY_VALUE = 2, PQ_CT_LIST = 3, PQ_CT_ENUM = 4,
  PQ_CT_DECIMAL = 5, PQ_CT_DATE = 6, PQ_CT_TIME_MILLIS = 7, PQ_CT_TIME_MICROS = 8,
  PQ_CT_TIMESTAMP_MILLIS = 9, PQ_CT_TIMESTAMP_MICROS = 10, PQ_CT_UINT_8 = 11, PQ_CT_UINT_16 = 12,
  PQ_CT_UINT_32 = 13, PQ_CT_UINT_64 = 14, PQ_CT_INT_8 = 15, PQ_CT_INT_16 = 16, PQ_CT_INT_32 = 17,
  PQ_CT_INT_64 = 18, PQ_CT_JSON = 19, PQ_CT_BSON = 20, PQ_CT_INTERVAL = 21
} pq_converted_t;

typedef enum { PQ_REQUIRED = 0, PQ_OPTIONAL = 1, PQ_REPEATED = 2 } pq_repetition_t;

typedef enum {
  PQ_ENC_PLAIN = 0, PQ_ENC_PLAIN_DICTIONARY = 2, PQ_ENC_RLE = 3, PQ_ENC_BIT_PACKED = 4,
  PQ_ENC_DELTA_BINARY_PACKED = 5, PQ_ENC_DELTA_LENGTH_BYTE_ARRAY = 6, PQ_ENC_DELTA_BYTE_ARRAY = 7,
  PQ_ENC_RLE_DICTIONARY = 8, PQ_ENC_BYTE_STREAM_SPLIT = 9
} pq_encoding_t;

typedef enum {
  PQ_CODEC_UNCOMPRESSED = 0, PQ_CODEC_SNAPPY = 1, PQ_CODEC_GZIP = 2, PQ_CODEC_LZO = 3,
  PQ_CODEC_BROTLI = 4, PQ_CODEC_LZ4 = 5, PQ_CODEC_ZSTD = 6, PQ_CODEC_LZ4_RAW = 7
} pq_codec_t;

typedef enum {
  PQ_PAGE_DATA = 0, PQ_PAGE_INDEX = 1, PQ_PAGE_DICTIONARY = 2, PQ_PAGE_DATA_V2 = 3
} pq_page_type_t;

typedef enum { PQ_UNIT_MILLIS = 1, PQ_UNIT_MICROS = 2, PQ_UNIT_NANOS = 3 } pq_time_unit_t;

/* LogicalType union: kind is the thrift field id of the member that is set (0: none). */
typedef enum {
  PQ_LT_NONE = 0, PQ_LT_STRING = 1, PQ_LT_MAP = 2, PQ_LT_LIST = 3, PQ_LT_ENUM = 4,
  PQ_LT_DECIMAL = 5, PQ_LT_DATE = 6, PQ_LT_TIME = 7, PQ_LT_TIMESTAMP = 8, PQ_LT_INTEGER = 10,
  PQ_LT_UNKNOWN = 11, PQ_LT_JSON = 12, PQ_LT_BSON = 13, PQ_LT_UUID = 14, PQ_LT_FLOAT16 = 15,
  PQ_LT_VARIANT = 16, PQ_LT_GEOMETRY = 17, PQ_LT_GEOGRAPHY = 18
} pq_logical_kind_t;

typedef struct {
  pq_logical_kind_t kind;
  int32_t scale, precision;    /* DECIMAL: 1 scale, 2 precision */
  bool is_adjusted_to_utc;     /* TIME, TIMESTAMP: 1 */
  pq_time_unit_t unit;         /* TIME, TIMESTAMP: 2 */
  int8_t bit_width;            /* INTEGER: 1 */
  bool is_signed;              /* INTEGER: 2 */
} pq_logical_type_t;

typedef struct {
  const uint8_t *data;
  uint32_t len;
} pq_bytes_t;

typedef struct {
  bool has_max, has_min, has_null_count, has_distinct_count, has_max_value, has_min_value;
  pq_bytes_t max, min;              /* 1, 2: deprecated signed-order stats */
  int64_t null_count;               /* 3 */
  int64_t distinct_count;           /* 4 */
  pq_bytes_t max_value, min_value;  /* 5, 6 */
  bool has_is_max_value_exact, is_max_value_exact; /* 7 */
  bool has_is_min_value_exact, is_min_value_exact; /* 8 */
} pq_statistics_t;

typedef struct {
  const char *key;   /* 1 */
  const char *value; /* 2, optional (NULL) */
} pq_key_value_t;

typedef struct {
  bool has_type; pq_type_t type;                  /* 1 */
  bool has_type_length; int32_t type_length;      /* 2 */
  bool has_repetition; pq_repetition_t repetition; /* 3 */
  const char *name;                               /* 4 required */
  bool has_num_children; int32_t num_children;    /* 5 */
  bool has_converted_type; pq_converted_t converted_type; /* 6 */
  bool has_scale; int32_t scale;                  /* 7 */
  bool has_precision; int32_t precision;          /* 8 */
  bool has_field_id; int32_t field_id;            /* 9 */
  pq_logical_type_t logical_type;                 /* 10, kind NONE when absent */
} pq_schema_element_t;

typedef struct {
  pq_type_t type;                        /* 1 */
  pq_encoding_t *encodings;              /* 2 */
  int32_t num_encodings;
  const char **path_in_schema;           /* 3 */
  int32_t path_len;
  pq_codec_t codec;                      /* 4 */
  int64_t num_values;                    /* 5 */
  int64_t total_uncompressed_size;       /* 6 */
  int64_t total_compressed_size;         /* 7 */
  pq_key_value_t *key_value_metadata;    /* 8 */
  int32_t num_key_value_metadata;
  int64_t data_page_offset;              /* 9 */
  bool has_index_page_offset; int64_t index_page_offset;           /* 10 */
  bool has_dictionary_page_offset; int64_t dictionary_page_offset; /* 11 */
  bool has_statistics; pq_statistics_t statistics;                 /* 12 */
} pq_column_metadata_t;

typedef struct {
  const char *file_path;                 /* 1, optional (NULL) */
  int64_t file_offset;                   /* 2 */
  bool has_meta_data; pq_column_metadata_t meta_data; /* 3 */
} pq_column_chunk_t;

typedef struct {
  pq_column_chunk_t *columns;            /* 1 */
  int32_t num_columns;
  int64_t total_byte_size;               /* 2 */
  int64_t num_rows;                      /* 3 */
  bool has_file_offset; int64_t file_offset;                 /* 5 */
  bool has_total_compressed_size; int64_t total_compressed_size; /* 6 */
  bool has_ordinal; int16_t ordinal;     /* 7 */
} pq_row_group_t;

typedef struct {
  int32_t version;                       /* 1 */
  pq_schema_element_t *schema;           /* 2: depth-first, root first */
  int32_t num_schema;
  int64_t num_rows;                      /* 3 */
  pq_row_group_t *row_groups;            /* 4 */
  int32_t num_row_groups;
  pq_key_value_t *key_value_metadata;    /* 5 */
  int32_t num_key_value_metadata;
  const char *created_by;                /* 6, optional */
  bool has_column_orders;                /* 7: list<ColumnOrder>; we only know TYPE_ORDER */
  int32_t num_column_orders;             /*    one per leaf, all TYPE_DEFINED_ORDER */
} pq_file_metadata_t;

typedef struct {
  int32_t num_values;                    /* 1 */
  pq_encoding_t encoding;                /* 2 */
  pq_encoding_t definition_level_encoding; /* 3 */
  pq_encoding_t repetition_level_encoding; /* 4 */
  bool has_statistics; pq_statistics_t statistics; /* 5 */
} pq_data_page_header_t;

typedef struct {
  int32_t num_values;                    /* 1 */
  pq_encoding_t encoding;                /* 2 */
  bool has_is_sorted; bool is_sorted;    /* 3 */
} pq_dictionary_page_header_t;

typedef struct {
  int32_t num_values;                    /* 1 */
  int32_t num_nulls;                     /* 2 */
  int32_t num_rows;                      /* 3 */
  pq_encoding_t encoding;                /* 4 */
  int32_t definition_levels_byte_length; /* 5 */
  int32_t repetition_levels_byte_length; /* 6 */
  bool is_compressed;                    /* 7, default true */
  bool has_statistics; pq_statistics_t statistics; /* 8 */
} pq_data_page_header_v2_t;

typedef struct {
  pq_page_type_t type;                   /* 1 */
  int32_t uncompressed_page_size;        /* 2 */
  int32_t compressed_page_size;          /* 3 */
  bool has_crc; int32_t crc;             /* 4 */
  bool has_data_page_header; pq_data_page_header_t data_page_header;             /* 5 */
  bool has_dictionary_page_header; pq_dictionary_page_header_t dictionary_page_header; /* 7 */
  bool has_data_page_header_v2; pq_data_page_header_v2_t data_page_header_v2;    /* 8 */
} pq_page_header_t;

#endif
