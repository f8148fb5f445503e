#include "cli/cli.h"

int main(int argc, char** argv) {
  return pgxform::run_cli(argc, argv);
}
