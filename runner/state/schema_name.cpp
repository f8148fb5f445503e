#include "state/schema_name.h"

#include "base/sql_text.h"

namespace pgxform {

StateSchema::StateSchema(std::string schema_name)
    : name(std::move(schema_name)), sql(quote_ident(name)) {}

}  // namespace pgxform
