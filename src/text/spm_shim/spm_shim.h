// C interface of the SentencePiece shim library (libulmfit_spm.so).
//
// Why a shim: Debian's libsentencepiece exports its bundled copy of protobuf-lite, and
// libtorch loads the system libprotobuf; linked into one program, the two collide during
// static initialisation and crash before main(). The shim links SentencePiece alone and is
// dlopen()ed with RTLD_LOCAL | RTLD_DEEPBIND (text/spm_library.cc), so each copy of protobuf
// only ever sees itself. Only plain C types cross this boundary.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct UlmfitSpm UlmfitSpm;

// Trains a model with SentencePiece's command-line style arguments. 0 on success; otherwise
// writes a message into `error` (at most error_len bytes, NUL-terminated).
int ulmfit_spm_train(const char* args, char* error, size_t error_len);

// Trains from in-memory sentences; on success *model (malloc'd, release with
// ulmfit_spm_free_buffer) holds the serialized model proto of *model_size bytes.
int ulmfit_spm_train_from_sentences(const char* args, const char* const* sentences,
                                    const size_t* sizes, size_t count, char** model,
                                    size_t* model_size, char* error, size_t error_len);
void ulmfit_spm_free_buffer(char* buffer);

// Loads a serialized model proto. NULL on error (message in `error`).
UlmfitSpm* ulmfit_spm_load(const char* data, size_t size, char* error, size_t error_len);
void ulmfit_spm_free(UlmfitSpm* model);

// Encodes UTF-8 text to ids. Returns the number of ids; writes at most `capacity` of them, so
// a caller whose buffer was too small calls again with a larger one. -1 on error.
int64_t ulmfit_spm_encode(const UlmfitSpm* model, const char* text, size_t size, int32_t* ids,
                          int64_t capacity);

// Decodes ids to text into `out` (capacity bytes, NUL-terminated). Returns the text's length,
// which may exceed capacity - 1 (call again with a larger buffer). -1 on error.
int64_t ulmfit_spm_decode(const UlmfitSpm* model, const int32_t* ids, size_t count, char* out,
                          int64_t capacity);

int32_t ulmfit_spm_piece_size(const UlmfitSpm* model);
int32_t ulmfit_spm_piece_to_id(const UlmfitSpm* model, const char* piece);
// The piece's text; valid while the model lives.
const char* ulmfit_spm_id_to_piece(const UlmfitSpm* model, int32_t id);
int32_t ulmfit_spm_unk_id(const UlmfitSpm* model);

#ifdef __cplusplus
}
#endif
