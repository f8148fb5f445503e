# Writes OUT, a C++ file defining pgxform::state_migrations(): each state/NNN_*.sql file's
# content, in file-name order. Raw string literals with a delimiter SQL never contains.
set(body "#include \"state/state_sql.h\"\nnamespace pgxform {\nconst std::vector<StateMigration>& state_migrations() {\n  static const std::vector<StateMigration> k_migrations = {\n")
string(REPLACE "|" ";" INPUTS "${INPUTS}")
foreach(f ${INPUTS})
  get_filename_component(name ${f} NAME_WE)
  string(REGEX MATCH "^[0-9]+" version ${name})
  # 008 would be an octal literal, and an invalid one: the number without its leading zeros.
  math(EXPR version "${version}")
  file(READ ${f} content)
  string(APPEND body "    {${version}, \"${name}\", R\"pgxform_sql(${content})pgxform_sql\"},\n")
endforeach()
string(APPEND body "  };\n  return k_migrations;\n}\n}  // namespace pgxform\n")
file(WRITE ${OUT} "${body}")
