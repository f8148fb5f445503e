#include "analysis/logged_batch.h"

namespace pgxform {

const char* batch_kind_name(BatchKind kind) {
  switch (kind) {
    case BatchKind::bisect:
      return "bisect";
    case BatchKind::retry:
      return "retry";
    case BatchKind::batch:
      break;
  }
  return "batch";
}

}  // namespace pgxform
