#include "output_format.h"

#include <iomanip>
#include <sstream>

namespace pgxform {

std::string fixed(double value, int precision) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << value;
  return s.str();
}

}  // namespace pgxform
