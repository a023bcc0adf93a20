"""stub"""
class PdfConverter:
    suffixes = (".pdf",)
    def convert(self, data, name, ctx):
        raise NotImplementedError
