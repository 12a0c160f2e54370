// Status helpers: user-facing errors travel as absl::Status; only cli/main.cc prints them.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define ULMFIT_CONCAT_INNER(a, b) a##b
#define ULMFIT_CONCAT(a, b) ULMFIT_CONCAT_INNER(a, b)

// Returns from the current function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    ::absl::Status _ulmfit_status = (expr);    \
    if (!_ulmfit_status.ok()) return _ulmfit_status; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, MakeX());` unwraps a StatusOr or returns its error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(ULMFIT_CONCAT(_ulmfit_statusor_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
