"""stub"""
class HtmlConverter:
    suffixes = (".html", ".htm")
    def convert(self, data, name, ctx):
        from data.errors import InputFileError
        raise InputFileError(name + ": todo")
