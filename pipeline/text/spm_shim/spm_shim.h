// The C interface of the SentencePiece shim (libltx_spm_shim.so).
//
// Debian's libsentencepiece carries its own copy of protobuf-lite with the
// same exported symbol names as the system libprotobuf that libtorch loads;
// linked into one process they interpose each other and crash at start-up.
// So sentencepiece lives behind this small C interface in a shared module
// that pipeline/tokenizer.cpp loads with dlopen(RTLD_LOCAL): its protobuf copy
// stays out of the global scope (libprotobuf keeps binding to itself), and the
// sentencepiece libraries import no protobuf symbols, so they keep their own.
// Every function is thread-safe for distinct handles; a handle is immutable
// after load. Errors are returned as malloc'ed strings the caller frees with
// ltx_spm_free_buffer.
#pragma once

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ltx_spm ltx_spm;

// Returns NULL and sets *error on failure; *not_found is 1 when the file is missing.
ltx_spm* ltx_spm_load(const char* path, char** error, int* not_found);
ltx_spm* ltx_spm_load_serialized(const char* data, size_t size, char** error);
void ltx_spm_free(ltx_spm* spm);

int ltx_spm_piece_size(const ltx_spm* spm);
int ltx_spm_pad_id(const ltx_spm* spm);
int ltx_spm_bos_id(const ltx_spm* spm);
int ltx_spm_eos_id(const ltx_spm* spm);

// Encodes text; *ids (malloc'ed) receives *count ids. Returns 0 on success.
int ltx_spm_encode(const ltx_spm* spm, const char* text, size_t size, int** ids, size_t* count, char** error);
// Decodes ids; *text (malloc'ed, NUL-terminated) receives the text. Returns 0 on success.
int ltx_spm_decode(const ltx_spm* spm, const int* ids, size_t count, char** text, char** error);
// Trains a model (SentencePieceTrainer flags string). Returns 0 on success.
int ltx_spm_train(const char* flags, char** error);

void ltx_spm_free_buffer(void* buffer);

#ifdef __cplusplus
}
#endif
