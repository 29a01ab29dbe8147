"""The utility layer every part of the package imports (and that imports none of them): atomic writes
(`sar_utils.atomic`), the command-line conventions (`sar_utils.command_line`) and the Hub upload (`sar_utils.hub`)."""
