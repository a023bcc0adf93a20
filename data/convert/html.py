"""stub"""
class HtmlConverter:
    suffixes = (".html",)
    def convert(self, data, name, ctx):
        raise NotImplementedError
